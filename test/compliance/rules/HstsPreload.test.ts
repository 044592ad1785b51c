import { Duration, type Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import { HSTS_VALUE } from '../../../lib/compliance';
import { findingsOf, fixtureStack } from './support';

const RULE = 'Bulwark-HstsPreload';

function policy(s: Stack, id: string, maxAge: Duration, preload: boolean) {
  new cloudfront.ResponseHeadersPolicy(s, id, {
    securityHeadersBehavior: {
      strictTransportSecurity: { accessControlMaxAge: maxAge, includeSubdomains: true, preload, override: true },
    },
  });
}

describe(RULE, () => {
  it('flags a response headers policy with a short max-age, without preload, or without HSTS', () => {
    const s = fixtureStack();
    policy(s, 'Short', Duration.days(365), true);
    policy(s, 'NoPreload', Duration.seconds(63072000), false);
    new cloudfront.ResponseHeadersPolicy(s, 'None', {
      securityHeadersBehavior: { contentTypeOptions: { override: true } },
    });
    expect(findingsOf(s, RULE)).toEqual(['S/NoPreload/Resource', 'S/None/Resource', 'S/Short/Resource']);
  });

  it('flags an API Gateway response that sets another HSTS value, accepts the exact one', () => {
    const s = fixtureStack();
    const api = new apigw.RestApi(s, 'Api');
    api.root.addMethod('GET');
    api.addGatewayResponse('Bad', {
      type: apigw.ResponseType.DEFAULT_4XX,
      responseHeaders: { 'Strict-Transport-Security': "'max-age=300'" },
    });
    api.addGatewayResponse('Good', {
      type: apigw.ResponseType.DEFAULT_5XX,
      responseHeaders: { 'Strict-Transport-Security': `'${HSTS_VALUE}'` },
    });
    expect(findingsOf(s, RULE)).toEqual(['S/Api/Bad/Resource']);
  });

  it('accepts the exact preload policy', () => {
    const s = fixtureStack();
    policy(s, 'Exact', Duration.seconds(63072000), true);
    expect(findingsOf(s, RULE)).toEqual([]);
  });
});
