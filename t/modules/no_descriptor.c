/* no_descriptor.c: test module without the descriptor symbol. */
__attribute__((visibility("default"))) int no_descriptor_here(void);
int no_descriptor_here(void)
{
    return 42;
}
