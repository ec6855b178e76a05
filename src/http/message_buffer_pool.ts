/**
 * The buffers a lending `ServerWebSocket` (websocket_conn.ts) receives large binary
 * messages into (see `ServerWebSocket.lendBinaryMessages`): one pool per
 * process, whatever the number of connections and sessions. A fresh,
 * zero-filled `ArrayBuffer` per message of up to 256 KiB, 1,500+ per
 * second on a tunnel's upload path, costs CPU in the garbage collector,
 * the zero fill and page faults; the send side measured half of the
 * server's CPU for the same habit (see src/stack/large_buffer_pool.ts; both are a
 * {@linkcode BufferPool}).
 *
 * A connection holds a buffer only while one message is received into it
 * (across reads) and while that message is dispatched; then the buffer
 * comes back here. The pool keeps at most {@linkcode LENT_MESSAGE_POOL_BUFFERS}
 * free buffers of {@linkcode LENT_MESSAGE_MAX_BYTES} (4,210,688 bytes in
 * all); when it is empty a buffer is allocated, and one given back to a
 * full pool is left to the garbage collector.
 *
 * Runtime-neutral.
 *
 * @module
 */

import { BufferPool } from "../stack/buffer_pool.ts";
import { DEFAULT_MAX_VNET_BATCH_BYTES } from "../wire/tunnel_protocol.ts";

/** A binary message shorter than this is not worth lending: it gets a fresh buffer. */
export const LENT_MESSAGE_MIN_BYTES = 4 * 1024;

/**
 * The longest binary message lent, and the size of every pooled buffer: a
 * vnet-stream batch (the largest message the tunnel client sends) and 1 KiB
 * to spare. A longer message gets a fresh buffer.
 */
export const LENT_MESSAGE_MAX_BYTES = DEFAULT_MAX_VNET_BATCH_BYTES + 1024;

/** The most free buffers the process-wide pool keeps (16 × 257 KiB). */
export const LENT_MESSAGE_POOL_BUFFERS = 16;

/**
 * The process-wide pool of the buffers lending WebSockets receive messages
 * into: at most {@linkcode LENT_MESSAGE_POOL_BUFFERS} free buffers of
 * {@linkcode LENT_MESSAGE_MAX_BYTES}.
 */
export const lentMessagePool: BufferPool = new BufferPool(
  LENT_MESSAGE_MAX_BYTES,
  LENT_MESSAGE_POOL_BUFFERS,
);
