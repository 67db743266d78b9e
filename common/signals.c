#include "common/signals.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static atomic_int stop_flag;

static void signals_on_stop(int sig)
{
        (void)sig;
        atomic_store(&stop_flag, 1);
}

void tally_signals_install(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = signals_on_stop;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

int tally_stop_requested(void)
{
        return atomic_load(&stop_flag);
}

void tally_stop_request(void)
{
        atomic_store(&stop_flag, 1);
}
