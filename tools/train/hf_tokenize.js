// Reference ids from the Hugging Face tokenizers library (its Rust code through the npm package
// @anush008/tokenizers). Usage: NODE_PATH=/path/to/node_modules node hf_tokenize.js tokenizer.json < lines
// Prints one JSON array of ids per input line (the line's text without its newline).
const { Tokenizer } = require('@anush008/tokenizers');
const fs = require('fs');
(async () => {
  const tok = Tokenizer.fromFile(process.argv[2]);
  const lines = fs.readFileSync(0, 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const out = [];
  for (const l of lines) {
    const e = await tok.encode(JSON.parse(l), null);
    out.push(JSON.stringify(Array.from(e.getIds())));
  }
  process.stdout.write(out.join('\n') + '\n');
})();
