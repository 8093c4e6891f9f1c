/* dkimmod_txt.c: vipmta-dkim-txt, which checks a DKIM private key file as the dkim module does and prints the DNS TXT record to publish for it. */
#include "dkimmod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* DNS character-strings hold at most 255 octets: longer records are split. */
#define TXT_STRING_MAX 255

static void usage(FILE *f)
{
    fputs("usage: vipmta-dkim-txt [-s SELECTOR -d DOMAIN] [-r] KEYFILE\n"
          "Checks the private key in KEYFILE as the dkim module does (owner, mode, type,\n"
          "RSA of 2048 bits or more, or Ed25519) and prints the TXT record to publish:\n"
          "  SELECTOR._domainkey.DOMAIN. IN TXT ( \"v=DKIM1; k=rsa; p=...\" ... )\n"
          "Without -s and -d only the quoted strings are printed; -r prints the record's\n"
          "text alone, unquoted and unsplit. Exit 1 when the key is refused (the reason\n"
          "is printed), 2 on a usage error.\n",
          f);
}

int main(int argc, char **argv)
{
    const char *selector = NULL, *domain = NULL;
    int raw = 0, c;
    while ((c = getopt(argc, argv, "s:d:rh")) != -1) {
        switch (c) {
        case 's': selector = optarg; break;
        case 'd': domain = optarg; break;
        case 'r': raw = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || (!selector != !domain)) {
        usage(stderr);
        return 2;
    }
    const char *file = argv[optind];
    struct dkimmod_key key;
    char err[512];
    memset(&key, 0, sizeof(key));
    if (dkimmod_key_load(&key, file, err, sizeof(err)) != 0) {
        fprintf(stderr, "vipmta-dkim-txt: %s: %s\n", file, err);
        return 1;
    }
    if (raw) {
        printf("%s\n", key.txt);
    } else {
        if (selector)
            printf("%s._domainkey.%s. IN TXT ( ", selector, domain);
        size_t len = strlen(key.txt);
        for (size_t off = 0; off < len; off += TXT_STRING_MAX)
            printf("%s\"%.*s\"", off ? " " : "", TXT_STRING_MAX, key.txt + off);
        printf("%s\n", selector ? " )" : "");
        fprintf(stderr, "vipmta-dkim-txt: %s: %s key of %d bits; signs with %s\n", file,
                key.alg == DKIMMOD_ALG_RSA ? "RSA" : "Ed25519", key.bits,
                dkimmod_alg_name(key.alg));
    }
    dkimmod_key_clear(&key);
    return 0;
}
