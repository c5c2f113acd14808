package runtime

func main() {
	if x := 1; x > 0 {
		println(x)
	}
}
