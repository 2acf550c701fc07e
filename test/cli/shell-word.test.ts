// shellWord: a path in a command we suggest (grow's "continue with: staged-lm train --resume …")
// reads back as that path when pasted into a POSIX shell.
import { spawnSync } from 'node:child_process';
import { shellWord } from '../../lib/cli/common';

describe('shellWord', () => {
  it('leaves plain paths alone and quotes the rest so that sh reads back the same word', () => {
    expect(shellWord('runs/a-1/checkpoint')).toBe('runs/a-1/checkpoint');
    for (const word of ['my runs/grown', "it's here", 'a"b', '$HOME/x', 'tab\there', 'ünï cødé', '*', '']) {
      const quoted = shellWord(word);
      expect(quoted).not.toBe(word);
      const r = spawnSync('sh', ['-c', `printf '%s' ${quoted}`], { encoding: 'utf8' });
      expect(r.stdout).toBe(word);
    }
  });
});
