from modelserve_registry.cli import main

main()
