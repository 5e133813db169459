from dataprep.synthfoley.generate import main

raise SystemExit(main())
