import sys

from binsal.cli import main

sys.exit(main())
