/* common/signals.h -- SIGTERM/SIGINT turn into a stop request that every
 * loop polls; SIGPIPE is ignored. Process-wide; install once from main. */
#pragma once

void tally_signals_install(void);
int tally_stop_requested(void);
void tally_stop_request(void);  /* e.g. on a fatal Kafka error */
