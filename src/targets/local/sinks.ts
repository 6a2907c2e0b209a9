/**
 * The small interface between the rules runtime and the local components its actions hand to.
 * Each throws DestinationNotFoundError when the named destination does not exist, so the rule's
 * errorAction receives the reason instead of the message vanishing.
 */
export class DestinationNotFoundError extends Error {
  override name = 'DestinationNotFoundError';
  constructor(readonly kind: string, readonly destination: string) {
    super(`${kind} "${destination}" does not exist`);
  }
}

export interface StreamSink {
  /** Synchronous (SQLite): the rules runtime commits puts atomically with its checkpoint. */
  putRecord(stream: string, data: Uint8Array, partitionKey: string): { shardId: string; sequenceNumber: string };
}

export interface ChannelMessage {
  messageId: string;
  /** Ingress time, ms since epoch. */
  receivedAt: number;
  payload: Uint8Array;
}

export interface ChannelSink {
  putMessages(channel: string, messages: ChannelMessage[]): Promise<void>;
}

export interface FunctionSink {
  /**
   * Queue an asynchronous invocation (AWS InvocationType=Event), as the IoT lambda action does.
   * Synchronous (SQLite), so the rules runtime commits it atomically with its checkpoint.
   */
  enqueue(functionName: string, event: unknown): void;
}

export interface ObjectSink {
  putObject(bucket: string, key: string, body: Uint8Array): Promise<void>;
}
