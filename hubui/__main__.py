from hubui.cli import main

raise SystemExit(main())
