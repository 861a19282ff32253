import { readFile } from 'node:fs/promises'
import tap from 'tap'
import { configurationDocPath, envExamplePath, renderConfigurationDoc, renderEnvExample } from '../../scripts/config-docs.js'
import { ConfigSchema, loadConfig } from '../../src/config.js'

tap.test('the committed docs/configuration.md is what the configuration schema generates (run `npm run docs:config` to update it)', async (t) => {
  t.equal(renderConfigurationDoc(), await readFile(configurationDocPath, 'utf8'))
})

tap.test('the committed .env.example is what the configuration schema generates, and loads as a valid configuration once uncommented', async (t) => {
  const text = await readFile(envExamplePath, 'utf8')
  t.equal(renderEnvExample(), text)
  const env = Object.fromEntries(text.split('\n').filter((line) => /^# [A-Z_]+=/.test(line)).map((line) => line.slice(2).split(/=(.*)/s).slice(0, 2)))
  t.same(Object.keys(env), Object.keys(ConfigSchema.properties), 'every variable, in the schema\'s order')
  t.ok(loadConfig(env), 'its values are the defaults, which the service accepts')
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
