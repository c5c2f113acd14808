//go:build ignore

// gen draws the extension's icon, icon.png (128x128): a rounded square with a line of code
// and, after the cursor, the same line's continuation as grey ghost text.
//
//	go run ./editors/vscode/icon/gen.go editors/vscode/icon.png
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
)

func main() {
	const n = 128
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	bg := color.NRGBA{0x1f, 0x4e, 0xa8, 0xff}
	code := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	ghost := color.NRGBA{0xff, 0xff, 0xff, 0x70}
	cursor := color.NRGBA{0xff, 0xc8, 0x3d, 0xff}
	const r = 24 // corner radius
	inside := func(x, y int) bool {
		cx, cy := min(max(x, r), n-1-r), min(max(y, r), n-1-r)
		dx, dy := x-cx, y-cy
		return dx*dx+dy*dy <= r*r
	}
	fill := func(x0, y0, x1, y1 int, c color.NRGBA) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	for y := range n {
		for x := range n {
			if inside(x, y) {
				img.SetNRGBA(x, y, bg)
			}
		}
	}
	// Three lines of code; the last one ends at the cursor, and ghost text follows it.
	fill(24, 32, 88, 44, code)
	fill(36, 56, 104, 68, code)
	fill(36, 80, 60, 92, code)
	fill(62, 76, 66, 96, cursor)
	fill(70, 80, 104, 92, ghost)
	fill(24, 104, 72, 108, ghost)
	f, err := os.Create(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
