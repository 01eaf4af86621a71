// kjs — kafkajs as the end-to-end tests drive it.
//
// kafkajs comes from npm, installed by tests/e2e/e2e.mk into build/npm
// (NODE_PATH=build/npm/node_modules).  kafkajs's consumer always joins a
// group, and the broker has no groups yet: `consume` drives kafkajs's own
// Cluster and Broker classes (its real Metadata and Fetch codecs) with an
// explicit partition and offset, as assign() would.
//
//   kjs.js produce BROKER TOPIC PART SPEC
//       send SPEC's records (recs.py) with acks -1; print "sent N FIRST LAST"
//   kjs.js consume BROKER TOPIC PART OFFSET COUNT [--ts]
//       read COUNT records from OFFSET; print them in recs.py's canonical
//       form; fails if fewer arrive within 30 s or more follow
//   kjs.js create BROKER TOPIC NPARTS | delete BROKER TOPIC
//       print "OK", "EXISTS" (createTopics answered false) or the error's type
'use strict'

const fs = require('fs')
const crypto = require('crypto')
const { Kafka, logLevel, Partitioners } = require('kafkajs')
const Cluster = require('kafkajs/src/cluster')
const { createLogger } = require('kafkajs/src/loggers')
const LoggerConsole = require('kafkajs/src/loggers/console')
const socketFactory = require('kafkajs/src/network/socketFactory')

function die(msg) {
  process.stderr.write(`kjs.js: ${msg}\n`)
  process.exit(1)
}

const unhex = h => (h === null || h === undefined ? null : Buffer.from(h, 'hex'))

// recs.py's canonical line.
function field(b) {
  if (b === null || b === undefined) return '-'
  if (b.length > 512) return `#${b.length}:${crypto.createHash('sha256').update(b).digest('hex')}`
  return 'x' + b.toString('hex')
}
function line(offset, key, value, headers, ts) {
  const hs = headers.map(([n, v]) => `${Buffer.from(n, 'utf8').toString('hex')}=${field(v)}`)
  let s = `${offset} key=${field(key)} value=${field(value)} headers=[${hs.join(',')}]`
  if (ts !== undefined) s += ` ts=${ts}`
  return s
}

const client = broker =>
  new Kafka({ clientId: 'kjs', brokers: [broker], logLevel: logLevel.ERROR, retry: { retries: 3 } })

async function produce(broker, topic, part, specPath) {
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'))
  const p = client(broker).producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await p.connect()
  const messages = spec.map(r => {
    const m = { partition: part, key: unhex(r.key), value: unhex(r.value) }
    if (r.headers && r.headers.length) {
      m.headers = {}
      for (const [n, v] of r.headers) m.headers[n] = unhex(v)
    }
    if (r.ts !== undefined) m.timestamp = String(r.ts)
    return m
  })
  const res = await p.send({ topic, acks: -1, messages })
  await p.disconnect()
  if (res.length !== 1 || res[0].errorCode !== 0) die(`produce: ${JSON.stringify(res)}`)
  const first = Number(res[0].baseOffset)
  console.log(`sent ${messages.length} ${first} ${first + messages.length - 1}`)
}

async function consume(broker, topic, part, offset, count, withTs) {
  const cluster = new Cluster({
    logger: createLogger({ level: logLevel.ERROR, logCreator: LoggerConsole }),
    socketFactory: socketFactory(),
    brokers: [broker],
    clientId: 'kjs-fetch',
    connectionTimeout: 3000,
    requestTimeout: 10000,
    enforceRequestTimeout: true,
    retry: { retries: 3 },
    allowAutoTopicCreation: false,
    isolationLevel: 1,
  })
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  const meta = cluster.findTopicPartitionMetadata(topic).find(p => p.partitionId === part)
  if (!meta) die(`no partition ${topic}/${part} in the metadata`)
  const leader = await cluster.findBroker({ nodeId: String(meta.leader) })
  const out = []
  let next = offset
  let high = -1
  const deadline = Date.now() + 30000
  while ((out.length < count || next < high) && Date.now() < deadline) {
    const res = await leader.fetch({
      replicaId: -1,
      isolationLevel: 1,
      maxWaitTime: 200,
      minBytes: 1,
      maxBytes: 10485760,
      topics: [{ topic, partitions: [{ partition: part, fetchOffset: String(next), maxBytes: 1048576 }] }],
    })
    const pr = res.responses[0].partitions[0]
    if (pr.errorCode !== 0) die(`fetch ${topic}/${part} at ${next}: error ${pr.errorCode}`)
    high = Number(pr.highWatermark)
    for (const m of pr.messages) {
      const o = Number(m.offset)
      if (o < next) continue // a batch may start before the offset asked for
      const hs = []
      for (const [n, v] of Object.entries(m.headers || {}))
        for (const one of Array.isArray(v) ? v : [v]) hs.push([n, one])
      out.push(line(o, m.key, m.value, hs, withTs ? m.timestamp : undefined))
      next = o + 1
    }
  }
  await cluster.disconnect()
  if (out.length !== count)
    die(`consume ${topic}/${part} from ${offset}: ${out.length} records, wanted ${count}`)
  process.stdout.write(out.map(s => s + '\n').join(''))
}

async function admin(broker, what, topic, nparts) {
  const a = client(broker).admin()
  await a.connect()
  try {
    if (what === 'create') {
      const made = await a.createTopics({ topics: [{ topic, numPartitions: nparts }] })
      console.log(made ? 'OK' : 'EXISTS')
    } else {
      await a.deleteTopics({ topics: [topic] })
      console.log('OK')
    }
  } catch (e) {
    const errs = e.errors && e.errors.length ? e.errors : [e]
    console.log(errs.map(x => x.type || x.name).join(','))
  }
  await a.disconnect()
}

async function main(argv) {
  const [cmd, broker, topic] = argv
  if (cmd === 'produce') await produce(broker, topic, Number(argv[3]), argv[4])
  else if (cmd === 'consume')
    await consume(broker, topic, Number(argv[3]), Number(argv[4]), Number(argv[5]), argv.includes('--ts'))
  else if (cmd === 'create') await admin(broker, 'create', topic, Number(argv[3]))
  else if (cmd === 'delete') await admin(broker, 'delete', topic, 0)
  else die('usage: see the comment at the top of kjs.js')
}

main(process.argv.slice(2)).catch(e => die(e.stack || String(e)))
