from aurora.tui.cli import main

main()
