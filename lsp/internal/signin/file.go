package signin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	wire "github.com/codingplan/codingplan/shared"
)

// Stored is what the sign-in file holds: the refresh token, and the account service it is for.
type Stored struct {
	URL     string      `json:"accounts_url"`
	Refresh wire.Secret `json:"refresh_token"`
}

// File is the sign-in file. It is written with mode 0600 in a directory of mode 0700, and
// replaced atomically, so that a crash never leaves half a token (a used refresh token ends
// the sign-in, so the new one must be stored before it is used).
type File struct {
	Path string
}

// DefaultPath is <os.UserConfigDir()>/codingplan/signin.json ($XDG_CONFIG_HOME or ~/.config
// on Linux, ~/Library/Application Support on macOS, %AppData% on Windows).
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("signin: no configuration directory: %w", err)
	}
	return filepath.Join(dir, "codingplan", "signin.json"), nil
}

// Load reads the file; a missing file is ErrSignedOut. A file others can read is made private
// first.
func (f File) Load() (Stored, error) {
	info, err := os.Stat(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return Stored{}, ErrSignedOut
	}
	if err != nil {
		return Stored{}, fmt.Errorf("signin: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(f.Path, 0o600); err != nil {
			return Stored{}, fmt.Errorf("signin: %w", err)
		}
	}
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return Stored{}, fmt.Errorf("signin: %w", err)
	}
	var st Stored
	if err := json.Unmarshal(data, &st); err != nil || st.Refresh == "" {
		return Stored{}, fmt.Errorf("signin: %s is not a sign-in file", f.Path)
	}
	return st, nil
}

// Save replaces the file with st.
func (f File) Save(st Stored) error {
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("signin: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("signin: %w", err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("signin: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".signin-*")
	if err != nil {
		return fmt.Errorf("signin: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("signin: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("signin: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("signin: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("signin: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("signin: %w", err)
	}
	return nil
}

// Delete removes the file; a missing one is fine.
func (f File) Delete() error {
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("signin: %w", err)
	}
	return nil
}
