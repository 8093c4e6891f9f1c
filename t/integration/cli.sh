#!/bin/sh
# cli.sh: (stub, being written)
exit 0
