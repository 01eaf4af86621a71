/*
 * genlines — write BYTES bytes of RECSIZE-byte lines ("%012llu yyyy...\n",
 * numbered so that reordering or loss changes the checksum) to stdout.
 * BYTES must be a multiple of RECSIZE.
 *
 * usage: genlines BYTES [RECSIZE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: genlines BYTES [RECSIZE]\n");
		return 2;
	}
	unsigned long long bytes = strtoull(argv[1], NULL, 10);
	size_t rec = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
	if (rec < 16 || bytes % rec != 0) {
		fprintf(stderr, "genlines: BYTES must be a multiple of RECSIZE >= 16\n");
		return 2;
	}
	size_t per = (1 << 20) / rec, fill = 0;
	char *buf = malloc(per * rec);
	if (buf == NULL)
		return 1;
	for (unsigned long long i = 0, n = bytes / rec; i < n; i++) {
		char *p = buf + fill * rec;
		memset(p, 'y', rec - 1);
		p[rec - 1] = '\n';
		char head[24];
		int k = snprintf(head, sizeof head, "%012llu ", i);
		memcpy(p, head, (size_t)k);
		if (++fill == per || i + 1 == n) {
			if (fwrite(buf, rec, fill, stdout) != fill) {
				perror("genlines: write");
				return 1;
			}
			fill = 0;
		}
	}
	free(buf);
	return fflush(stdout) == 0 ? 0 : 1;
}
