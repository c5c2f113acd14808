package bench

import (
	"errors"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	tests := []struct {
		name, doc, body, want string
		wantErr               error
	}{
		{
			name: "replaces only between the markers",
			doc:  "# B\n\n## Other\nkeep\n\n## Language server\nprose\n" + BeginMarker + "\nold\nold\n" + EndMarker + "\nafter\n",
			body: "\nnew table\n\n",
			want: "# B\n\n## Other\nkeep\n\n## Language server\nprose\n" + BeginMarker + "\nnew table\n" + EndMarker + "\nafter\n",
		},
		{name: "no markers", doc: "# B\n", wantErr: ErrNoSection},
		{name: "end before begin", doc: EndMarker + "\n" + BeginMarker + "\n", wantErr: ErrNoSection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceSection([]byte(tt.doc), tt.body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
