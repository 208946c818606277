/*
 * torpor-bench's wire formats: the frames a client sends (masked, as RFC
 * 6455 requires), the frames a server sends, the benchmark's payload, and
 * the Socket.IO packets around it.
 *
 * The payload is printable ASCII, so that every server relays it as it
 * is and Socket.IO carries it in a JSON string without escapes: sequence
 * number (16 hex digits), send time on CLOCK_MONOTONIC in ns (16), room
 * index (8), then 'x' up to the payload size.  CLOCK_MONOTONIC is one
 * clock for every process of the machine, so the client process that
 * receives a message can time it against the one that sent it.
 */
#ifndef TORPOR_BENCH_TB_WIRE_H
#define TORPOR_BENCH_TB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/tb.h"

#define TB_OP_TEXT 0x1
#define TB_OP_BINARY 0x2
#define TB_OP_CLOSE 0x8
#define TB_OP_PING 0x9
#define TB_OP_PONG 0xa

/* A client frame's header is at most 8 bytes: 2, 2 of length, 4 of mask. */
#define TB_FRAME_HEAD_MAX 8
/* What Socket.IO puts around the payload: 42["msg","...."] */
#define TB_SIO_MSG_HEAD "42[\"msg\",\""
#define TB_SIO_MSG_TAIL "\"]"
#define TB_SIO_WRAP_BYTES 12
/* The longest benchmark message frame a client sends. */
#define TB_MESSAGE_MAX (TB_FRAME_HEAD_MAX + TB_SIO_WRAP_BYTES + TB_MAX_SIZE)

/*
 * tb_wire_frame writes a final client frame of opcode with data[0..len),
 * at most 65535 bytes, masked with mask, to out, which has room for
 * len + TB_FRAME_HEAD_MAX.  Returns the frame's length.
 */
size_t tb_wire_frame(uint8_t *out, int opcode, const void *data, size_t len,
                     uint32_t mask);

/*
 * tb_wire_message writes one benchmark message as the client frame proto
 * needs to out (room for TB_MESSAGE_MAX); returns the frame's length.
 */
size_t tb_wire_message(uint8_t *out, enum tb_proto proto, unsigned size,
                       uint64_t seq, uint64_t sent_ns, uint32_t room,
                       uint32_t mask);

/*
 * tb_wire_parse_payload reads the fields of a payload of size bytes;
 * false when p is not one.
 */
bool tb_wire_parse_payload(const uint8_t *p, size_t len, unsigned size,
                           uint64_t *seq, uint64_t *sent_ns, uint32_t *room);

enum tb_frame_status {
    TB_FRAME_PARTIAL, // more bytes needed
    TB_FRAME_OK,
    TB_FRAME_BAD, // masked, fragmented or reserved bits set: no server
                  // sends such a frame to this client
};

struct tb_frame {
    int opcode;
    const uint8_t *data;
    size_t len;   // of data
    size_t total; // of the frame, header included
};

/* tb_wire_next reads the server frame at the start of p[0..len). */
enum tb_frame_status tb_wire_next(const uint8_t *p, size_t len,
                                  struct tb_frame *f);

#endif /* TORPOR_BENCH_TB_WIRE_H */
