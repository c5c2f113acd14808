import os


def read_config(path):
    with open(path) as f:
        return f.read()


def write_config(path, data):
    with open(path, "w") as f:
        f.write(data)


def main():
    data = read_config("a.txt")
    write_config("b.txt", data)


if __name__ == "__main__":
    main()
