/* check_loader.c: (stub, being written) */
int main(void) { return 0; }
