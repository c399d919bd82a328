from faceperf.cli import main

raise SystemExit(main())
