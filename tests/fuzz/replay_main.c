/* Replay driver: without libFuzzer, runs a fuzz target over every file of
 * the corpus directories (or files) named on the command line, so the
 * corpus is a regression test under the sanitizers. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        unsigned char *buf;
        long n;

        if (!f)
                return -1;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
                fclose(f);
                free(buf);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        int files = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *dir;
                struct dirent *de;

                if (stat(argv[i], &st) != 0) {
                        fprintf(stderr, "%s: cannot stat\n", argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        files += replay_file(argv[i]) == 0;
                        continue;
                }
                dir = opendir(argv[i]);
                while (dir && (de = readdir(dir))) {
                        char path[4096];

                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        files += replay_file(path) == 0;
                }
                if (dir)
                        closedir(dir);
        }
        printf("replayed %d inputs\n", files);
        return files > 0 ? 0 : 1;
}
