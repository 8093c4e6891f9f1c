/* queue.c: (stub, being written) */
