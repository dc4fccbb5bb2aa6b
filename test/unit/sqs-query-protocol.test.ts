/**
 * The SQS query protocol translation, without a server: form parameters as botocore's query
 * serializer writes them (flattened lists and maps counted from 1, batch entries, message
 * attribute values) to the JSON protocol's input, JSON answers to the XML AWS sends, JSON errors
 * to the query codes of the SQS query model.
 */
import { describe, expect, it } from 'vitest';
import {
  SqsQueryError,
  decodeQueryRequest,
  encodeQueryResponse,
  errorXml,
  queryErrorFromJson,
  xmlText,
} from '../../scripts/local/sqs-query-protocol.ts';

const form = (text: string) => new Map(new URLSearchParams(text));
const QUEUE = 'http://127.0.0.1:4566/000000000000/q';
const NS = 'xmlns="http://queue.amazonaws.com/doc/2012-11-05/"';

function decodeError(text: string, pathQueueUrl?: string): SqsQueryError {
  try {
    decodeQueryRequest(form(text), pathQueueUrl);
  } catch (error) {
    return error as SqsQueryError;
  }
  throw new Error('expected the request to be refused');
}

describe('query request to JSON input', () => {
  it('turns repeated AttributeName.N and MessageAttributeName.N into lists, integers into numbers', () => {
    const { action, input } = decodeQueryRequest(
      form(
        `Action=ReceiveMessage&Version=2012-11-05&QueueUrl=${encodeURIComponent(QUEUE)}` +
          '&AttributeName.2=SentTimestamp&AttributeName.1=ApproximateReceiveCount' +
          '&MessageAttributeName.1=TallyErrorCode&MessageAttributeName.2=TallyErrorReason' +
          '&MaxNumberOfMessages=10&WaitTimeSeconds=20&VisibilityTimeout=0',
      ),
    );
    expect(action).toBe('ReceiveMessage');
    expect(input).toEqual({
      QueueUrl: QUEUE,
      AttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      MessageAttributeNames: ['TallyErrorCode', 'TallyErrorReason'],
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 20,
      VisibilityTimeout: 0,
    });
  });

  it('reads batch entries with their message attributes, in entry order', () => {
    const { input } = decodeQueryRequest(
      form(
        `Action=SendMessageBatch&QueueUrl=${encodeURIComponent(QUEUE)}` +
          '&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two' +
          '&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one%20%2B%20more' +
          '&SendMessageBatchRequestEntry.1.DelaySeconds=3' +
          '&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k' +
          '&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String' +
          '&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v' +
          '&SendMessageBatchRequestEntry.10.Id=j&SendMessageBatchRequestEntry.10.MessageBody=ten',
      ),
    );
    expect(input).toEqual({
      QueueUrl: QUEUE,
      Entries: [
        {
          Id: 'a',
          MessageBody: 'one + more',
          DelaySeconds: 3,
          MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } },
        },
        { Id: 'b', MessageBody: 'two' },
        { Id: 'j', MessageBody: 'ten' },
      ],
    });
  });

  it('reads binary and list attribute values, queue attributes and tags as maps', () => {
    const send = decodeQueryRequest(
      form(
        `Action=SendMessage&QueueUrl=${encodeURIComponent(QUEUE)}&MessageBody=x` +
          '&MessageAttribute.1.Name=bin&MessageAttribute.1.Value.DataType=Binary&MessageAttribute.1.Value.BinaryValue=AAEC%2Fw%3D%3D' +
          '&MessageAttribute.2.Name=list&MessageAttribute.2.Value.DataType=String' +
          '&MessageAttribute.2.Value.StringListValue.1=p&MessageAttribute.2.Value.StringListValue.2=q',
      ),
    );
    expect(send.input.MessageAttributes).toEqual({
      bin: { DataType: 'Binary', BinaryValue: 'AAEC/w==' },
      list: { DataType: 'String', StringListValues: ['p', 'q'] },
    });
    const create = decodeQueryRequest(
      form(
        'Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=7&Tag.1.Key=team&Tag.1.Value=ops',
      ),
    );
    expect(create.input).toEqual({ QueueName: 'q', Attributes: { VisibilityTimeout: '7' }, tags: { team: 'ops' } });
    const tag = decodeQueryRequest(
      form(`Action=TagQueue&QueueUrl=${encodeURIComponent(QUEUE)}&Tag.1.Key=a&Tag.1.Value=b`),
    );
    expect(tag.input).toEqual({ QueueUrl: QUEUE, Tags: { a: 'b' } });
  });

  it('takes the queue URL from the path when a request is sent to the queue itself', () => {
    expect(decodeQueryRequest(form('Action=PurgeQueue'), QUEUE).input).toEqual({ QueueUrl: QUEUE });
    // A QueueUrl parameter wins over the path.
    expect(decodeQueryRequest(form('Action=PurgeQueue&QueueUrl=http%3A%2F%2Fh%2F1%2Fother'), QUEUE).input).toEqual({
      QueueUrl: 'http://h/1/other',
    });
  });

  it('refuses what AWS refuses, with its codes', () => {
    expect(decodeError('Action=SendMessage&MessageBody=x')).toMatchObject({ status: 400, code: 'MissingParameter' });
    expect(decodeError(`Action=SendMessage&QueueUrl=${encodeURIComponent(QUEUE)}`).message).toBe(
      'The request must contain the parameter MessageBody.',
    );
    expect(
      decodeError(`Action=ReceiveMessage&QueueUrl=${encodeURIComponent(QUEUE)}&MaxNumberOfMessages=ten`),
    ).toMatchObject({
      code: 'InvalidParameterValue',
    });
    expect(decodeError('Action=NoSuchThing')).toMatchObject({ code: 'InvalidAction' });
    expect(decodeError('Version=2012-11-05')).toMatchObject({ code: 'MissingAction' });
    expect(decodeError(`Action=ListDeadLetterSourceQueues&QueueUrl=${encodeURIComponent(QUEUE)}`)).toMatchObject({
      code: 'AWS.SimpleQueueService.UnsupportedOperation',
    });
  });
});

describe('JSON answer to query XML', () => {
  it('wraps results in <ActionResponse><ActionResult> with the 2012-11-05 namespace and a request id', () => {
    expect(encodeQueryResponse('GetQueueUrl', { QueueUrl: QUEUE }, 'rid')).toBe(
      `<?xml version="1.0"?>\n<GetQueueUrlResponse ${NS}><GetQueueUrlResult><QueueUrl>${QUEUE}</QueueUrl></GetQueueUrlResult>` +
        '<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetQueueUrlResponse>',
    );
    // Actions without a result still answer ResponseMetadata; those with one keep an empty result
    // element (botocore looks the wrapper up by name).
    expect(encodeQueryResponse('DeleteMessage', {}, 'rid')).toBe(
      `<?xml version="1.0"?>\n<DeleteMessageResponse ${NS}><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DeleteMessageResponse>`,
    );
    expect(encodeQueryResponse('ReceiveMessage', {}, 'rid')).toContain('<ReceiveMessageResult></ReceiveMessageResult>');
  });

  it('writes messages with flattened Attribute and MessageAttribute entries, escaping the body', () => {
    const xml = encodeQueryResponse(
      'ReceiveMessage',
      {
        Messages: [
          {
            MessageId: 'm1',
            ReceiptHandle: 'r1',
            MD5OfBody: 'md5',
            Body: 'a < b & c\r\n"d"',
            Attributes: { ApproximateReceiveCount: '2' },
            MD5OfMessageAttributes: 'amd5',
            MessageAttributes: {
              code: { DataType: 'String', StringValue: 'BAD_KEY' },
              bin: { DataType: 'Binary', BinaryValue: 'AAE=' },
            },
          },
        ],
      },
      'rid',
    );
    expect(xml).toContain(
      '<ReceiveMessageResult><Message><MessageId>m1</MessageId><ReceiptHandle>r1</ReceiptHandle><MD5OfBody>md5</MD5OfBody>' +
        '<Body>a &lt; b &amp; c&#xD;\n&quot;d&quot;</Body>' +
        '<Attribute><Name>ApproximateReceiveCount</Name><Value>2</Value></Attribute>' +
        '<MD5OfMessageAttributes>amd5</MD5OfMessageAttributes>' +
        '<MessageAttribute><Name>code</Name><Value><StringValue>BAD_KEY</StringValue><DataType>String</DataType></Value></MessageAttribute>' +
        '<MessageAttribute><Name>bin</Name><Value><BinaryValue>AAE=</BinaryValue><DataType>Binary</DataType></Value></MessageAttribute>' +
        '</Message></ReceiveMessageResult>',
    );
  });

  it('writes batch results as result entries and BatchResultErrorEntry elements', () => {
    const xml = encodeQueryResponse(
      'SendMessageBatch',
      {
        Successful: [{ Id: 'a', MessageId: 'm', MD5OfMessageBody: 'x' }],
        Failed: [{ Id: 'b', SenderFault: true, Code: 'InvalidMessageContents', Message: 'bad' }],
      },
      'rid',
    );
    expect(xml).toContain(
      '<SendMessageBatchResult><SendMessageBatchResultEntry><Id>a</Id><MessageId>m</MessageId><MD5OfMessageBody>x</MD5OfMessageBody></SendMessageBatchResultEntry>' +
        '<BatchResultErrorEntry><Id>b</Id><SenderFault>true</SenderFault><Code>InvalidMessageContents</Code><Message>bad</Message></BatchResultErrorEntry></SendMessageBatchResult>',
    );
    expect(encodeQueryResponse('DeleteMessageBatch', { Successful: [{ Id: 'a' }], Failed: [] }, 'r')).toContain(
      '<DeleteMessageBatchResult><DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry></DeleteMessageBatchResult>',
    );
  });

  it('answers queue URLs at the origin the client called (the emulator keeps the first start port)', () => {
    const xml = encodeQueryResponse(
      'ListQueues',
      { QueueUrls: [QUEUE, 'http://127.0.0.1:4566/000000000000/r'] },
      'r',
      'http://127.0.0.1:5000',
    );
    expect(xml).toContain(
      '<ListQueuesResult><QueueUrl>http://127.0.0.1:5000/000000000000/q</QueueUrl><QueueUrl>http://127.0.0.1:5000/000000000000/r</QueueUrl></ListQueuesResult>',
    );
  });
});

describe('errors', () => {
  it("maps the JSON protocol's error names to the query model's codes", () => {
    const missing = queryErrorFromJson(
      400,
      JSON.stringify({ __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'gone' }),
    );
    expect(missing).toMatchObject({ status: 400, code: 'AWS.SimpleQueueService.NonExistentQueue', message: 'gone' });
    expect(
      queryErrorFromJson(400, JSON.stringify({ __type: 'com.amazonaws.sqs#QueueNameExists', message: 'm' })).code,
    ).toBe('QueueAlreadyExists');
    expect(
      queryErrorFromJson(400, JSON.stringify({ __type: 'com.amazonaws.sqs#InvalidParameterValue', message: 'm' })).code,
    ).toBe('InvalidParameterValue');
    // A fault inside the emulator says nothing of its internals.
    const fault = queryErrorFromJson(
      500,
      JSON.stringify({ statusCode: 500, error: 'x', message: 'TypeError at /secret' }),
    );
    expect(fault).toMatchObject({ status: 500, code: 'InternalFailure' });
    expect(fault.message).not.toContain('secret');
  });

  it('answers <ErrorResponse><Error> with Type, Code, Message and the request id beside Error', () => {
    expect(errorXml(new SqsQueryError(400, 'AWS.SimpleQueueService.NonExistentQueue', 'no <queue>'), 'rid')).toBe(
      `<?xml version="1.0"?>\n<ErrorResponse ${NS}><Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code>` +
        '<Message>no &lt;queue&gt;</Message><Detail/></Error><RequestId>rid</RequestId></ErrorResponse>',
    );
    expect(errorXml(new SqsQueryError(500, 'InternalFailure', 'x'), 'r')).toContain('<Type>Receiver</Type>');
  });

  it('escapes every character XML would otherwise change or refuse', () => {
    expect(xmlText('<&>"\r\n\t')).toBe('&lt;&amp;&gt;&quot;&#xD;\n\t');
  });
});
