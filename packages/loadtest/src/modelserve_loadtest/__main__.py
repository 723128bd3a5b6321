from modelserve_loadtest.cli import main

main()
