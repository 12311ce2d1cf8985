from damba.cli import main

main()
