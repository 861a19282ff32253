import { readFile } from 'node:fs/promises'
import tap from 'tap'
import { configurationDocPath, renderConfigurationDoc } from '../../scripts/config-docs.js'
import { ConfigSchema } from '../../src/config.js'

tap.test('the committed docs/configuration.md is what the configuration schema generates (run `npm run docs:config` to update it)', async (t) => {
  t.equal(renderConfigurationDoc(), await readFile(configurationDocPath, 'utf8'))
})

tap.test('every configuration variable has a description, so its row in docs/configuration.md says what it does', async (t) => {
  const undescribed = Object.entries(ConfigSchema.properties)
    .filter(([, schema]) => typeof schema.description !== 'string' || schema.description.trim() === '')
    .map(([name]) => name)
  t.same(undescribed, [], 'add a `description` to these variables in src/config.ts')
})

tap.test('a default computed from the machine is documented as its rule, not as this machine\'s number', async (t) => {
  const row = renderConfigurationDoc().split('\n').find((line) => line.startsWith('| `DB_POOL_MAX` |'))
  t.ok(row, 'DB_POOL_MAX has a row')
  const [, , shownDefault] = row!.split(' | ')
  t.equal(shownDefault, 'twice the CPU cores this process may use, at most 200')
  t.notMatch(row!, `\`${ConfigSchema.properties.DB_POOL_MAX.default}\``)
})
