// esbuild inlines `import x from './file.pem' with { type: 'text' }` as a string.
declare module '*.pem' {
  const text: string;
  export default text;
}
