/**
 * Athena's result files (`<query id>.csv` in the output location) parsed as they stream from S3: RFC 4180,
 * every value quoted ("" inside for a quote, newlines allowed), and NULL written as an empty unquoted field,
 * which is told apart from an empty string (""). Records come out in batches, one per chunk read, so a
 * million rows cost a few hundred awaits, not a million.
 */

/** One record: each field's text, or null for an unquoted empty field (Athena's NULL). */
export type CsvRecord = (string | null)[];

export class CsvParser {
  private field = '';
  private record: CsvRecord = [];
  private quoted = false;
  /** Inside quotes; `quoteSeen`: the last character was a quote inside a quoted field (end, or the first of ""). */
  private inQuotes = false;
  private quoteSeen = false;
  private fieldStarted = false;

  /** Parses one chunk of text; returns the records it completed. */
  push(text: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    const n = text.length;
    let i = 0;
    while (i < n) {
      if (this.inQuotes) {
        // Copy up to the next quote in one slice.
        const q = text.indexOf('"', i);
        if (q < 0) {
          this.field += text.slice(i);
          break;
        }
        this.field += text.slice(i, q);
        this.inQuotes = false;
        this.quoteSeen = true;
        i = q + 1;
        continue;
      }
      const c = text.charCodeAt(i);
      if (this.quoteSeen) {
        this.quoteSeen = false;
        if (c === 34) {
          // "" inside a quoted field: one quote, still quoted.
          this.field += '"';
          this.inQuotes = true;
          i++;
          continue;
        }
      }
      if (c === 44) {
        this.endField();
        i++;
      } else if (c === 10) {
        this.endField();
        out.push(this.record);
        this.record = [];
        i++;
      } else if (c === 13) {
        i++; // \r of \r\n
      } else if (c === 34 && !this.fieldStarted) {
        this.quoted = true;
        this.fieldStarted = true;
        this.inQuotes = true;
        i++;
      } else {
        // Unquoted text up to the next separator.
        let j = i;
        while (j < n) {
          const d = text.charCodeAt(j);
          if (d === 44 || d === 10 || d === 13) break;
          j++;
        }
        this.field += text.slice(i, j);
        this.fieldStarted = true;
        i = j;
      }
    }
    return out;
  }

  /** The last record, when the text did not end with a newline. */
  end(): CsvRecord[] {
    if (this.inQuotes) throw new Error('the CSV ends inside a quoted field (truncated result file?)');
    if (!this.fieldStarted && this.record.length === 0) return [];
    this.endField();
    const last = this.record;
    this.record = [];
    return [last];
  }

  private endField(): void {
    this.record.push(this.quoted || this.field !== '' ? this.field : null);
    this.field = '';
    this.quoted = false;
    this.quoteSeen = false;
    this.fieldStarted = false;
  }
}

/** Records of a CSV byte stream, in batches (UTF-8 split across chunks is decoded whole). */
export async function* csvRecordBatches(chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<CsvRecord[]> {
  const decoder = new TextDecoder('utf-8');
  const parser = new CsvParser();
  for await (const chunk of chunks) {
    const batch = parser.push(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (batch.length) yield batch;
  }
  const rest = parser.push(decoder.decode());
  const last = [...rest, ...parser.end()];
  if (last.length) yield last;
}
