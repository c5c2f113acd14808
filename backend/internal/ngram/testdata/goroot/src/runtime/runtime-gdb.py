import gdb
import sys


class GoroutinesCmd(gdb.Command):
	"List all goroutines."

	def __init__(self):
		gdb.Command.__init__(self, "info goroutines", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

	def invoke(self, _arg, _from_tty):
		for ptr in SliceValue(gdb.parse_and_eval("'runtime.allgs'")):
			print(ptr)


if __name__ == "__main__":
	GoroutinesCmd()

if __name__ == "__main__":
	GoroutinesCmd()
