package complete

import (
	"path"
	"strings"
)

// Ignored reports whether relPath matches one of patterns, so nothing of the file may be sent.
// A pattern without a slash matches any one path element (the file name or a directory, as in
// .gitignore); a pattern with a slash matches the whole workspace-relative path, where "**"
// stands for any number of elements. Matching uses path.Match syntax per element.
func Ignored(patterns []string, relPath string) bool {
	if len(patterns) == 0 || relPath == "" {
		return false
	}
	p := strings.Trim(strings.ReplaceAll(relPath, "\\", "/"), "/")
	var elems []string // split only for a pattern with a slash: most have none
	for _, pat := range patterns {
		pat = strings.TrimSpace(pat)
		if pat == "" {
			continue
		}
		if !strings.Contains(strings.TrimSuffix(pat, "/"), "/") {
			pat = strings.TrimSuffix(pat, "/")
			for el := range strings.SplitSeq(p, "/") {
				if ok, _ := path.Match(pat, el); ok {
					return true
				}
			}
			continue
		}
		if elems == nil {
			elems = strings.Split(p, "/")
		}
		if matchElems(strings.Split(strings.Trim(pat, "/"), "/"), elems) {
			return true
		}
	}
	return false
}

// matchElems matches path elements against pattern elements; "**" matches zero or more
// elements, and a pattern that matches a directory matches everything under it.
func matchElems(pat, elems []string) bool {
	if len(pat) == 0 {
		return true // the pattern matched a directory holding the file
	}
	if pat[0] == "**" {
		for i := 0; i <= len(elems); i++ {
			if matchElems(pat[1:], elems[i:]) {
				return true
			}
		}
		return false
	}
	if len(elems) == 0 {
		return false
	}
	if ok, _ := path.Match(pat[0], elems[0]); !ok {
		return false
	}
	return matchElems(pat[1:], elems[1:])
}
