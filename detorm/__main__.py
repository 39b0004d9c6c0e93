from detorm._cli import main

raise SystemExit(main())
