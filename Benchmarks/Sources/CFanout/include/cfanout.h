#ifndef DEVTS_CFANOUT_H
#define DEVTS_CFANOUT_H

#include <stdint.h>

/*
 * The fan-out reference in plain C over libuv, to measure the Swift runtime against.
 *
 * Topology (the Swift fan-out in FanoutKit uses the same): one sender loop thread holding one
 * TCP connection to each receiver; one receiver loop thread holding a listener on 127.0.0.1:0
 * and the accepted ends of those connections.
 *
 * Framing and batching follow DevtsRuntime's TCPConnection: each frame is a 4-byte big-endian
 * length and the body; frames are packed into 64 KiB buffers, one uv_write per buffer; each
 * connection keeps at most about 8 MiB in flight (written, not yet confirmed by libuv) and resumes
 * writing once that drains to 2 MiB. Receivers read into 64 KiB+ buffers, parse every whole
 * frame (coping with frames split across reads), count them and add the first byte of each body
 * to a checksum.
 *
 * Thread safety: create, run and destroy are called from one controlling thread, one at a time.
 */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfanout cfanout;

/// Starts both loop threads and connects `receivers` connections. NULL on failure (the reason
/// goes to stderr). `frame_size` is the body size of each frame, 0 to 65532 bytes.
cfanout *cfanout_create(int receivers, int frame_size);

/// Sends `frames_per_receiver` frames to every receiver and returns, once every receiver has
/// counted them all, the seconds between the start command and the last frame parsed.
/// Returns a negative number when a connection failed.
double cfanout_run(cfanout *fanout, long frames_per_receiver);

/// The sum of the first body byte of every frame received so far (to check and to keep the
/// parsing honest).
uint64_t cfanout_checksum(const cfanout *fanout);

/// Closes every handle, stops both threads and frees everything. Returns 0 when both loops
/// closed cleanly (`uv_loop_close` returned 0), a libuv error code otherwise.
int cfanout_destroy(cfanout *fanout);

/// create + run + destroy: seconds for one run, or a negative number on failure.
double cfanout_run_once(int receivers, int frame_size, long frames_per_receiver);

#ifdef __cplusplus
}
#endif

#endif
