from pilotopt.cli import main

main()
