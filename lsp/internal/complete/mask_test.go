package complete

import (
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	// Fake credentials assembled at run time, so that no scanner mistakes this file for a leak.
	rep := strings.Repeat
	aws := "AKIA" + rep("Q", 16)
	ghp := "ghp_" + rep("a1", 18)
	pat := "github_pat_" + rep("B2", 20)
	slack := "xoxb-" + rep("1234-", 4) + "abcdef"
	openai := "sk-proj-" + rep("Xy9", 10)
	anthropic := "sk-ant-api03-" + rep("Zq8_", 8)
	jwt := "eyJhbGciOiJFZERTQSJ9." + "eyJzdWIiOiJ1c2VyIn0." + rep("c2ln", 6)
	keyBody := "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n"

	tests := []struct {
		name, in, want string
	}{
		{"private key block", "x\n-----BEGIN RSA PRIVATE KEY-----\n" + keyBody + "-----END RSA PRIVATE KEY-----\ny",
			"x\n-----BEGIN RSA PRIVATE KEY-----\n<private-key>\n-----END RSA PRIVATE KEY-----\ny"},
		{"private key cut off at the end", "x\n-----BEGIN OPENSSH PRIVATE KEY-----\n" + keyBody,
			"x\n-----BEGIN OPENSSH PRIVATE KEY-----\n<private-key>"},
		{"private key cut off at the start", keyBody + "-----END PRIVATE KEY-----\nrest",
			"<private-key>\n-----END PRIVATE KEY-----\nrest"},
		{"private key in a JSON string", `{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----\n"}`,
			`{"private_key": "-----BEGIN PRIVATE KEY-----` + "\n<private-key>\n" + `-----END PRIVATE KEY-----\n"}`},
		{"PGP private key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
			"-----BEGIN PGP PRIVATE KEY BLOCK-----\n<private-key>\n-----END PGP PRIVATE KEY BLOCK-----"},
		{"PEM markers in parser code kept", "const a = \"-----BEGIN PRIVATE KEY-----\"\nconst b = \"-----END PRIVATE KEY-----\"\n",
			"const a = \"-----BEGIN PRIVATE KEY-----\"\nconst b = \"-----END PRIVATE KEY-----\"\n"},
		{"AWS access key id", "id := \"" + aws + "\"", "id := \"<aws-access-key-id>\""},
		{"GitHub token", "t = " + ghp + "\n", "t = <github-token>\n"},
		{"GitHub fine-grained token", "GH=" + pat, "GH=<github-token>"},
		{"Slack token", "slack(" + slack + ")", "slack(<slack-token>)"},
		{"OpenAI key", "client(" + openai + ")", "client(<openai-api-key>)"},
		{"Anthropic key", "client(" + anthropic + ")", "client(<anthropic-api-key>)"},
		{"JWT", "auth: Bearer " + jwt, "auth: Bearer <jwt>"},
		{"quoted password", `db.password = "hunter22"`, `db.password = "<password>"`},
		{"Go password", `password := "s3cret!"`, `password := "<password>"`},
		{"JSON api key", `{"api_key": "abc123def"}`, `{"api_key": "<api-key>"}`},
		{"client secret", `CLIENT_SECRET='abcdef'`, `CLIENT_SECRET='<secret>'`},
		{"env file", "API_KEY=abc123xyz\nDEBUG=1\n", "API_KEY=<api-key>\nDEBUG=1\n"},
		{"YAML token", "auth:\n  token: f00b4r-b4z\n", "auth:\n  token: <token>\n"},
		{"export line", "export DB_PASSWORD=pa55word\n", "export DB_PASSWORD=<password>\n"},
		{"function call kept", "token = getToken(user)\n", "token = getToken(user)\n"},
		{"qualified name kept", "password = hashlib.sha256\n", "password = hashlib.sha256\n"},
		{"comparison kept", `if password == "":`, `if password == "":`},
		{"plain word kept", "password: required\n", "password: required\n"},
		{"ordinary code kept", "func add(a, b int) int { return a + b }\n", "func add(a, b int) int { return a + b }\n"},
		{"short sk- kept", "task-sk-1", "task-sk-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Mask(tt.in); got != tt.want {
				t.Errorf("Mask(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	patterns := []string{".env", ".env.*", "*.pem", "*.key", "id_*", "secrets/**", "config/prod/*.yaml", "**/private/*"}
	tests := []struct {
		path string
		want bool
	}{
		{".env", true},
		{"app/.env", true},
		{"app/.env.local", true},
		{"certs/server.pem", true},
		{"tls.key", true},
		{"home/.ssh/id_ed25519", true},
		{"secrets/db/password.txt", true},
		{"config/prod/app.yaml", true},
		{"config/dev/app.yaml", false},
		{"a/b/private/notes.md", true},
		{`win\path\id_rsa`, true},
		{"main.go", false},
		{"src/keyboard.go", false},
		{"environment.go", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Ignored(patterns, tt.path); got != tt.want {
			t.Errorf("Ignored(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestBudgetsCutAtLineBoundaries(t *testing.T) {
	tests := []struct {
		name   string
		f      func(string, int) string
		s      string
		budget int
		want   string
	}{
		{"tail inside a line starts at the next line", tailLines, "aaa\nbbb\nccc", 5, "ccc"},
		{"tail at a line start", tailLines, "aaa\nbbb\nccc", 7, "bbb\nccc"},
		{"tail within budget", tailLines, "aaa\nbbb", 100, "aaa\nbbb"},
		{"tail of one long line at a character boundary", tailLines, "é日本", 4, "本"},
		{"tail keeps the cursor's line when a line break ends the text", tailLines, "aaaa\n", 3, "aa\n"},
		{"head ends after a line break", headLines, "aaa\nbbb\nccc", 9, "aaa\nbbb\n"},
		{"head within budget", headLines, "aaa\nbbb", 100, "aaa\nbbb"},
		{"head of one long line at a character boundary", headLines, "日本語", 4, "日"},
		{"no budget", headLines, "abc", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f(tt.s, tt.budget); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := tt.f(tt.s, tt.budget); len(got) > tt.budget {
				t.Errorf("got %d bytes, over the budget %d", len(got), tt.budget)
			}
		})
	}
}
