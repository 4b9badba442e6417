from nnspec.cli import main

main()
