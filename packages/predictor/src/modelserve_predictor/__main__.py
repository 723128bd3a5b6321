from modelserve_predictor.cli import main

main()
