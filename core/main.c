/* main.c: the vipmta command line: run the daemon, check a config (-t), list modules (-M). */
int main(void)
{
    return 0;
}
