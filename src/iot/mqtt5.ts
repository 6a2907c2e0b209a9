// MQTT 5 as AWS IoT Core serves it (developerguide/mqtt.html "MQTT 5 supported features" and "MQTT 5 properties",
// and the message broker quotas): the limits the local broker enforces and `iotctl publish --mqtt5` checks first.

/** Topic aliases a client may set per connection (the CONNACK's Topic Alias Maximum). */
export const TOPIC_ALIAS_MAXIMUM = 8;
/** The user properties of one PUBLISH, keys and values together, in bytes of UTF-8. */
export const MAX_USER_PROPERTIES_BYTES = 8 * 1024;
/** A session outlives its connection by at most this long: AWS's default persistent session expiry (1 hour). */
export const MAX_SESSION_EXPIRY_S = 3600;

export type UserProperties = Readonly<Record<string, string | readonly string[]>>;

/** Bytes of UTF-8 in user properties, keys and values, as counted against MAX_USER_PROPERTIES_BYTES. */
export function userPropertiesBytes(props: UserProperties): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(props)) {
    for (const v of typeof value === 'string' ? [value] : value) bytes += Buffer.byteLength(key) + Buffer.byteLength(v);
  }
  return bytes;
}
