#!/usr/bin/env python
"""`python train.py CORPUS --name NAME ...` is `tinygpt train CORPUS --name NAME ...`.

Also the script torchrun launches:  torchrun --nproc_per_node=2 train.py CORPUS --name NAME
"""

from tinygpt_tui.cli.train import main

if __name__ == "__main__":
    main()
