// The lean AssumeRole client's own parts: the Query body, and a strict reading of STS's XML.
import { describe, expect, it } from 'vitest';
import { parseAssumeRoleResponse, parseErrorResponse, queryBody } from '../../server/src/aws/sts-query.js';
import { assumeRoleParams } from '../../server/src/aws/sts.js';

const ok = (inner: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <AssumeRoleResult>${inner}</AssumeRoleResult>\n  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\n</AssumeRoleResponse>`;
const CREDS = `<Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>a/b+c&amp;d</SecretAccessKey>
      <SessionToken>tok&lt;en</SessionToken>
      <Expiration>2026-11-28T21:00:00Z</Expiration>
    </Credentials>`;
const USER = '<AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId><Arn>arn:aws:sts::1:assumed-role/deploy/s</Arn></AssumedRoleUser>';

describe('parseAssumeRoleResponse', () => {
  it('reads every field, decoding entities, whatever the whitespace', () => {
    expect(parseAssumeRoleResponse(ok(`<SourceIdentity>gh-1</SourceIdentity>${USER}${CREDS}<PackedPolicySize>6</PackedPolicySize>`))).toEqual({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'a/b+c&d',
      sessionToken: 'tok<en',
      expiration: new Date('2026-11-28T21:00:00Z'),
      assumedRoleArn: 'arn:aws:sts::1:assumed-role/deploy/s',
      sourceIdentity: 'gh-1',
    });
  });

  const refused: Array<[string, string]> = [
    ['another document', `<GetCallerIdentityResponse><AssumeRoleResult>${CREDS}</AssumeRoleResult></GetCallerIdentityResponse>`],
    ['a secret given twice', ok(`${USER}${CREDS.replace('</Credentials>', '<SecretAccessKey>other</SecretAccessKey></Credentials>')}`)],
    ['two Credentials blocks', ok(`${USER}${CREDS}${CREDS}`)],
    ['markup inside a value', ok(`${USER}${CREDS.replace('tok&lt;en', 'tok<b>x</b>en')}`)],
    ['an empty secret', ok(`${USER}${CREDS.replace('a/b+c&amp;d', '')}`)],
    ['a secret outside Credentials', ok(`${USER}<SecretAccessKey>x</SecretAccessKey>${CREDS.replace(/<SecretAccessKey>.*<\/SecretAccessKey>/, '')}`)],
  ];
  it.each(refused)('gives no secret for %s', (_name, xml) => {
    const r = parseAssumeRoleResponse(xml);
    expect(Boolean(r.accessKeyId && r.secretAccessKey && r.sessionToken && r.expiration)).toBe(false);
  });

  it('gives no expiration for a date that does not parse', () => {
    expect(parseAssumeRoleResponse(ok(`${USER}${CREDS.replace('2026-11-28T21:00:00Z', 'soon')}`)).expiration).toBeUndefined();
  });
});

describe('parseErrorResponse', () => {
  it('reads the code and message of an STS error', () => {
    const xml = '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not &quot;allowed&quot;</Message></Error><RequestId>x</RequestId></ErrorResponse>';
    expect(parseErrorResponse(xml)).toEqual({ code: 'AccessDenied', message: 'not "allowed"' });
  });

  it('says nothing about a body that is not an STS error (an HTML page from a proxy)', () => {
    expect(parseErrorResponse('<html><body>502 Bad Gateway</body></html>')).toBeUndefined();
  });
});

describe('the AssumeRole Query body', () => {
  it('encodes every parameter the policy decided, RFC 3986 style', () => {
    const body = queryBody(
      assumeRoleParams({
        roleArn: 'arn:aws:iam::123456789012:role/a',
        region: undefined,
        sessionName: 's',
        sourceIdentity: 'si',
        tags: [{ Key: 'ref', Value: "refs/heads/x y+(é)*'" }],
        transitiveTagKeys: ['ref'],
        durationSeconds: 900,
        sessionPolicy: '{"a":1}',
        policyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
      }),
    );
    expect(body).toBe(
      'Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fa&RoleSessionName=s&SourceIdentity=si&DurationSeconds=900' +
        '&Tags.member.1.Key=ref&Tags.member.1.Value=refs%2Fheads%2Fx%20y%2B%28%C3%A9%29%2A%27&TransitiveTagKeys.member.1=ref' +
        '&Policy=%7B%22a%22%3A1%7D&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess',
    );
  });
});
