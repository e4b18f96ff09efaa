"""Hand-written hard cases: look-alikes that must not be redacted, and real values in awkward places.

Markup as in generate.py, plus decoys: {{!TYPE:value}} is text that looks like TYPE but is not one
(a number failing Luhn, an IBAN with a bad checksum, a version string shaped like an IP, a public
key, a documentation example key). Decoys carry no label; they are listed per record so the
evaluation can say which detector fell for which. Every decoy's invalidity is checked by
tests/test_pii_accuracy.py with the same validators that make the valid values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    text: str


CASES = [
    Case("card_fails_luhn", "prompt",
         "The checkout says my card {{!CREDIT_CARD:4539 1488 0343 6468}} is invalid. Oh wait, I mistyped the last "
         "digit — it's «CARD». Also, is {{!CREDIT_CARD:5500-0000-0000-0005}} a real Mastercard number?"),
    Case("order_numbers_16_digits", "tool_output",
         "$ ./orders list --status=stuck\nORDER            CUSTOMER  TOTAL\n{{!CREDIT_CARD:4012888888881882}} "
         " c_81723    129.00\n{{!CREDIT_CARD:6011000990139425}}  c_11873     54.90\n"
         "{{!CREDIT_CARD:3782 822463 10006}}  c_00912    300.10\n3 orders"),
    Case("iban_bad_checksum", "prompt",
         "Two IBANs from the supplier's letter: {{!IBAN_CODE:DE89 3704 0044 0532 0130 01}} and «IBAN». The bank "
         "rejected the first one. Which of them is correct? Also {{!IBAN_CODE:GB82WEST12345698765433}}."),
    Case("versions_shaped_like_ips", "tool_output",
         "$ chromium --version && uname -a && cat /etc/os-release | head -2\n"
         "Chromium 120.0.6099.109 built on Debian 12.4\n"
         "Linux build-7 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64 GNU/Linux\n"
         "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nMicrosoft Windows [Version 10.0.19045.3803]\n"
         "agent build {{!IP_ADDRESS:2.0.1.15}} (commit «shortsha»)"),
    Case("uuids_hashes_not_keys", "tool_output",
         "request_id=«uuid» trace_id=«hex» span_id=«shortsha»«shortsha#2»ab\n"
         "image=ghcr.io/acme/agent@«digest»\ncommit «sha» (HEAD -> main)\n"
         "integrity sha512-«hex»«hex#2»==\nETag: \"«hex#3»\"\nx-amz-request-id: «shortsha#3»ABCD1234"),
    Case("placeholder_keys", "completion",
         "Replace the placeholders before running:\n\n```bash\nexport OPENAI_API_KEY=\"sk-...\"\n"
         "export ANTHROPIC_API_KEY=\"<your-anthropic-key>\"\n"
         "export AWS_ACCESS_KEY_ID={{!AWS_ACCESS_KEY_ID:AKIAIOSFODNN7EXAMPLE}}\n"
         "export STRIPE_API_KEY=sk_test_XXXXXXXXXXXXXXXXXXXXXXXX\n```\n"
         "The AWS value is the example from AWS's own docs."),
    Case("emails_in_code", "completion",
         "```python\nSUPPORT_ADDRESS = \"[[EMAIL_ADDRESS:help@acme-corp.io]]\"\n\n@app.route(\"/users/<user_id>\")\n"
         "def user(user_id):\n    return send(to=f\"{user_id}@internal\", bcc=\"«EMAIL»\")\n```\n\n"
         "```bash\ngit config --global user.email \"«EMAIL#2»\"\n"
         "git remote add origin {{!EMAIL_ADDRESS:git@github.com}}:acme/agent.git\n"
         "npm install @openai/agents@0.1.3 @types/node@20.11.0\n```"),
    Case("obfuscated_mail_joining", "prompt",
         "my address is «FIRST».«LAST» at gmail — just join them, or use «EMAIL» for work. Don't use "
         "{{!EMAIL_ADDRESS:noreply@localhost}}."),
    Case("key_beside_its_name", "tool_output",
         "{\"provider\":\"anthropic\",\"credentials\":{\"type\":\"api_key\",\"value\":\"«ANTHROPIC»\"},"
         "\"fallback\":{\"provider\":\"openai\",\"credentials\":{\"type\":\"api_key\",\"value\":\"«OPENAI»\"}}}"),
    Case("aws_pair_neutral_fields", "tool_output",
         "{\"id\": \"«AWS_ID»\", \"secret\": \"«AWS_SECRET»\", \"created\": \"«date»\", \"owner\": \"«user»\"}"),
    Case("pem_truncated_in_log", "tool_output",
         "2025-03-12T10:15:03Z WARN loaded key material from env: [[PRIVATE_KEY:-----BEGIN RSA PRIVATE KEY-----\n"
         "MIIEowIBAAKCAQEAuT6K2hvWx1p3pS0m0Y5w9YcJ6vX5QdYl0p0nZ3w8rYlq9Tt2v6yB]]... (truncated, 1679 bytes)"),
    Case("public_keys_are_public", "tool_output",
         "$ cat ~/.ssh/id_ed25519.pub\n{{!PRIVATE_KEY:ssh-ed25519 "
         "AAAAC3NzaC1lZDI1NTE5AAAAIG8n3Jx0wqkqD2mVv7yY2Qm5d0hQ9oD0bXo1pI2nq3Yd}} "
         "deploy@build-01\n$ head -2 server.crt\n{{!PRIVATE_KEY:-----BEGIN CERTIFICATE-----}}\n"
         "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ"),
    Case("ssn_invalid_groups", "prompt",
         "Which of these are real SSNs? {{!US_SSN:000-12-3456}}, {{!US_SSN:666-45-6789}}, {{!US_SSN:123-45-6789}} "
         "and «SSN». The last one is my mother's."),
    Case("phone_lookalikes", "tool_output",
         "ISBN {{!PHONE_NUMBER:978-3-16-148410-0}}, printed 2025-03-12, batch 2025031217, zip 94105, "
         "part no. 12-4471-93; questions: «PHONE»"),
    Case("ip_inside_url", "tool_output",
         "scraping [[URL:http://10.0.0.12:9100/metrics]] ... ok (812 series)\n"
         "scraping [[URL:http://[2001:db8::17]:9100/metrics]] ... timeout"),
    Case("password_in_http_url", "tool_output",
         "pip config list\n"
         "global.index-url='https://«user»:[[PASSWORD:g7Rf2kLq9xZp]]@pypi.internal.acme-corp.io/simple'"),
    Case("jwt_as_bearer", "tool_output",
         "> GET /api/me HTTP/2\n> Host: app.internal\n> Authorization: Bearer «JWT»\n> Accept: */*\n< HTTP/2 200"),
    Case("btc_bad_checksum", "prompt",
         "Is {{!CRYPTO:1BoatSLRHtKNngkdXEeobR76b53LETtpyU}} a valid address? My own wallet is «BTC» and the "
         "exchange's deposit address is «BTC#2»."),
    Case("publishable_stripe_key", "completion",
         "The publishable key `{{!STRIPE_API_KEY:pk_live_51HqLyjWDarjtT1zdp7dcXkM3pUqsDgIbzWUr4FnTxV}}` may ship to "
         "the browser; the secret key «STRIPE» must stay on the server."),
    Case("dea_bad_check_digit", "prompt",
         "The prescriber DEA numbers on file are {{!MEDICAL_LICENSE:BK1234567}} and «DEA»; the pharmacy says the first "
         "is wrong."),
    Case("nhs_bad_checksum", "prompt",
         "Invoice {{!UK_NHS:1029384756}} is not an NHS number; mine is «NHS»."),
    Case("connection_strings_many_dialects", "tool_output",
         "jdbc:postgresql://db.internal:5432/app?user=«user»&password=[[PASSWORD:Zt8uq3vH1yLs]]&ssl=true\n"
         "Server=tcp:sql-prod.database.windows.net,1433;Initial Catalog=crm;User "
         "ID=«user»;Password=[[PASSWORD:c4L!9pQw2eRt]];\n"
         "amqp://«user»:«PASSWORD»@rabbit:5672/%2F\nredis-cli -a «PASSWORD#2» -h cache.internal ping\n"
         "spring.datasource.password=«PASSWORD#3»"),
    Case("yaml_config_secrets", "tool_output",
         "$ cat config/prod.yaml\ndatabase:\n  host: pg.internal\n  user: «user»\n  password: «PASSWORD»\n"
         "providers:\n  openai:\n    api_key: «OPENAI»\n  google:\n    api_key: «GOOGLE»\nalerts:\n"
         "  slack_token: «SLACK»\n  email: «EMAIL»"),
    Case("unicode_names", "prompt",
         "Please add «PERSON», «PERSON#2» and [[PERSON:Zoë Ñúñez-García]] to the invite. Zoë's number is «PHONE», "
         "[[PERSON:Łukasz Wiśniewski]] prefers «EMAIL»."),
    Case("ipv6_forms", "tool_output",
         "$ ss -tnp | head -4\nESTAB 0 0 [[IP_ADDRESS:::1]]:5432 [[IP_ADDRESS:::1]]:51022 "
         "users:((\"postgres\",pid=912))\n"
         "ESTAB 0 0 [«IPV6»]:443 [«IPV6#2»]:61034 users:((\"nginx\",pid=77))\n"
         "ESTAB 0 0 «IPV4»:22 «IPV4#2»:51515 users:((\"sshd\",pid=1201))"),
    Case("phones_many_countries", "prompt",
         "Office numbers for the signature: London [[PHONE_NUMBER:+44 (0)20 7946 0958]], Berlin "
         "[[PHONE_NUMBER:+49 30 901820]], Paris [[PHONE_NUMBER:+33 1 42 68 53 00]], Sydney "
         "[[PHONE_NUMBER:+61 2 9374 4000]], New York [[PHONE_NUMBER:(212) 555-0143]], and mobile «PHONE»."),
    Case("email_signature_block", "prompt",
         "Summarise the thread. The last message ends with:\n\n--\n«PERSON»\nHead of Procurement, «company»\n"
         "«ADDRESS»\nT «PHONE» | M «PHONE#2»\n«EMAIL»\nThis email and any attachments are confidential."),
    Case("slack_webhook_url", "tool_output",
         "alertmanager.yml:\n  slack_configs:\n  - api_url: "
         "[[SLACK_WEBHOOK_URL:https://hooks.slack.com/services/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]]\n"
         "    channel: '#alerts'"),
    Case("secrets_in_stack_trace", "tool_output",
         "anthropic.AuthenticationError: Error code: 401 - {'type': 'error', 'error': {'type': 'authentication_error', "
         "'message': 'invalid x-api-key'}}\n  request headers: {'x-api-key': '«ANTHROPIC»', 'anthropic-version': "
         "'2023-06-01', 'user-agent': 'Anthropic/Python 0.40.0'}"),
    Case("agent_transcript_mixed", "completion",
         "I ran the lookup. «PERSON» (customer since «date») has the card «CARD» on file and lives in «CITY». "
         "Their last login was from «IP». The API key in their integration settings, «OPENAI», was last used "
         "on «date#2»; I recommend rotating it and emailing them at «EMAIL»."),
    Case("github_tokens_all_kinds", "tool_output",
         "$ gh auth status\ngithub.com\n  ✓ Logged in to github.com account «user» (keyring)\n  - Token: «GITHUB»\n"
         "$ cat ~/.config/hub\ngithub.com:\n- user: «user»\n  oauth_token: «GITHUB#2»\n  protocol: https"),
    Case("uk_ids_formats", "prompt",
         "My NINO is «NINO» (or written «NINO#2» on the old card); NHS number «NHS»."),
    Case("driver_license_context", "prompt",
         "Renewing my license: old driver license no. «DL», new permit «DL#2», date of birth «date»."),
    Case("card_in_json_number", "tool_output",
         "{\"customer\": \"«PERSON»\", \"pan\": «CARD_DIGITS», \"exp\": \"09/28\", \"cvc_check\": \"pass\"}"),
]
