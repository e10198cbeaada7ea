import sys

from wsrepctl.cli import main

sys.exit(main())
