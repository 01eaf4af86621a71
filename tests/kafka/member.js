// member.js — one member of a Kafka consumer group with kafkajs, for
// t_kafka_groups.sh (see member.py: the same contract).
//   member.js BROKER GROUP TOPIC OUTFILE
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')
const [broker, group, topic, outfile] = process.argv.slice(2)
const kafka = new Kafka({ clientId: 'member-js', brokers: [broker], logLevel: logLevel.ERROR })
const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000 })
const out = fs.openSync(outfile, 'a')
let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await consumer.disconnect() // commits what was resolved and leaves the group
  fs.closeSync(out)
  process.exit(0)
}
process.on('SIGTERM', stop)
setTimeout(stop, 120000)
async function main() {
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic: t, partition, message }) => {
      fs.writeSync(out, `${partition} ${message.offset} ${message.value.toString()}\n`)
      await consumer.commitOffsets([{ topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() }])
    },
  })
}
main().catch(e => { process.stderr.write(`member.js: ${e}\n`); process.exit(1) })
