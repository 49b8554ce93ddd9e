/* Fixed test keys (see keys.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "keys.h"

const char TBT_PEM_P256_A[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAAAAAAAAAAAAAAAA\n"
                              "AAAAAAAAAAAAABERIiIzM0REVVWhRANCAAQNwXCFSByogX5bT6tDhl5M2aPkKSSB\n"
                              "dCpRdLgVzPRyVnZaffJwRypNpQMp0xRcDNTUQFSqdkYwotHM0hzV0C/u\n"
                              "-----END PRIVATE KEY-----\n";

const char TBT_PEM_P256_B[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAAAAAAAAAAAAAAAA\n"
                              "AAAAAAAAAAAAAGZmd3eIiJmZqqqhRANCAARLKcuP/LyElD/LvpY4yQrldnexYzdZ\n"
                              "K6zg7duFnveOAG67xIJwkdzddvtoylxtTG3VI8FEBmqbgS2+0s3FaPDL\n"
                              "-----END PRIVATE KEY-----\n";

const char TBT_PEM_RSA_1024[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAMDKfAUuShnDamWX\n"
                                "DBj6oPDs957Zp3yry2EufTEMLerQJ5zfp/WhDpKcrBDeHVmKLVaTRE5HVRezkN+m\n"
                                "ELpP9J1hPtG1HyiBZf9NpKJSqQCeEXUhwOnCduBZgkb3Ncb+VLmJDhxmiZjUHk25\n"
                                "YAHnKRsqAW2zHH2avwwmN8n+BYyhAgMBAAECgYEAtdqKL+zhEvpFE3zueWV4iKpO\n"
                                "TTXsCeqXFp1ek/R0H6mnpA9IhKcecud8WxDZSIvRhne1l80rlAbaokwoPUaMaoB/\n"
                                "210PzeqSOZspzW4weeK/qhbGMB+Kjb5lucAtZjKriTgB314iNTDVoMiJa8z0ztKx\n"
                                "FP/pqG2a+FqJzAXnjZECQQDjyGWnyx0GQk8aSGDI9VvyNuvLUsSBoPVsPuM0+Lyg\n"
                                "RFlYKa5e5XF2Ac94Ozan34PEd0IukB0Nh3lVWL2PU5PtAkEA2Kxm9GXmxcY1wzrC\n"
                                "maINK+yBZsL+TqB7zd0CFA/vEJJ/n73RAbvNaOytXxh6EkZsoiMcde59yGAgrzpq\n"
                                "e48tBQJABt8Puf0Vlg/ABSHz0XwdVvQzLsIDbYmmfapz/jAWuJr3OwKe4Pv47T9m\n"
                                "u9DFeFD0z6NtWqw8RCE3Fs0DguRZjQJAWty5dAYDp65+Pze2Aa1WbrQIc+qTsK9W\n"
                                "G7dxtq4T59Q3luqH6n0yH60Y60cdcep8heXJep8fulatfi42F0isbQJAMriR2HEM\n"
                                "bFLwAH1pXhjpHyMJVcUeUl4wYR24nc4xJi15xF6y6LOgcROSm3kMqg169lxr+dGH\n"
                                "r3kxnawaXbVoFw==\n"
                                "-----END PRIVATE KEY-----\n";

const char TBT_PEM_RSA_A[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDntQ80u2iQ5LPA\n"
                             "NbBXSp9nkKhUn0yeyPlz+OQDOZYUCuAGGCHHbyqeZm7vqM64YfgnV5vL3ZZKuScl\n"
                             "IJJxZXM7Fq+5V9hrABRxXPuIFI8rq+ANUmnM00a0XXFa14xOHdb0LBaDySAMK3H2\n"
                             "krGkspRDIL62eYjVVVaMKeZg9w3Cvks0pZNr1rjL2bsKWQWmmS2dCAV9imNxwOHh\n"
                             "XMmzf/ywvQfZWRUSZQ/dv6pfdrbO9cT9bK14AJ93ETUiSi48+J60SmmVOnGlkeLb\n"
                             "dTObBmiV+h6xkBuVCkmtsPpDp9vdnwfNatx3DyUlv7Hbzjxy/hPiDdjE7U8LPB/T\n"
                             "/ITanl5/AgMBAAECggEADrusDQR88yL1AlvyQQgCgnF9H+2wel45bQmJPLfs1jcU\n"
                             "zz5kk3ZQRZnUzvyzBvVac+ygVZewO+3G/UIzcu4U+XpepRCJYdBeUbusVhbx6EB5\n"
                             "ss8n4WQZGFSNZc3T4uRcgSfL112ytyNiD+AnAdvFt/j9N27F58QRM0C3deNE/DoX\n"
                             "YVN83UaktQZavR0nh++CKMq5JyeNPJa8UVdGL3/1YzVwZ3ha+dAbMtcSLlu3Djrf\n"
                             "5nQqXilotK40yJ+ZdepF4SASVGcCL4reeUAvNZFhYW4ecBFC3Ii2LOMysg0pJFLW\n"
                             "s0HOmdvHlWN55V6EaEzC4P8D6/BAxnh5yW8l1JQjKQKBgQD8tf36Tk2ZPYLjOFiv\n"
                             "x1GV0qJxfMfHx8FpyoJhilviQ6+xY0MZU24Ji9r4whBBBbKXxybCOnDV3p6I5X7q\n"
                             "ZWHP9GPFfrLYz38rrqVESgItnFPnkt5Tcqr6iy5xHji8Q0Fh+hg1H37krEo0OpG0\n"
                             "d2gKqlOjwbnchcG2pQ3HQNtUuQKBgQDquRXRKAzltPTCiS3zVCcetXx3FgDYk3wM\n"
                             "yuA17DYj/8tp4SrfsQ4+2fh0Da9a7uonGYoB6NQ95waS9UspnqhMPgPQYe185Dg/\n"
                             "98lC+OLLMI9RvU+/+e9V1cnQHcYpXyqbI/vEFRSKU5zfPtuAd++SxR7+CxrUmFfR\n"
                             "l/dGFGyg9wKBgQCb4/ikrCEaYuOXH282IBKoBaPHtl3XU9ZwWEhNu3gq/+4l00HV\n"
                             "Ia5DnU6bHbvBIK6nCmdScZKhnA7YDBpapefMzMmvTxUswfOFEttIYQ8u67ymoecc\n"
                             "OyRWIf2oMih1mld/BTRhsOgqUE4GIgs39GDuE1w9LIhnDOwOq4rwW4XxoQKBgGMJ\n"
                             "XQ83GtoBFBTQ1LaKl0b5xF5qxkibUggDwb5+wAlIcIdoHjLr/dq/FXnCHG79x4Zf\n"
                             "3D8aAhNsWvW+0cvpyZEByZIu/4lmseUro5vCb87T2mTev7t8tWM+JTzOk0H5iXyU\n"
                             "HjKJwnTq+pGnb+4wrMD8syr1fIifDs68k/TZwUvZAoGBANsjzc0ViRO7ebuOi4py\n"
                             "iKMVjMQvZ+kAKvp1witHKaer0Kxo9gd/xhEKewsyq/4ejmqsu1u+rryuZnpSbzyX\n"
                             "kWUjcXtypPCbsOxhDUh/64PX3S7qrQ0xZRFqHHlmR3MWl4u/5kzkIAY+lgB8chnB\n"
                             "Rn+x5WLD3DFiZ4AmkSplkq/t\n"
                             "-----END PRIVATE KEY-----\n";

const char TBT_PEM_RSA_B[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCTXvwSjCsevV5n\n"
                             "90FRd2E15pmaSzkTnUbKYBKM0reF+KbWttoj94+oFATV3eQfZGAu1453yXEHoLwE\n"
                             "UgApSQoxbqHx5GDxmH3WNEyd+RXeM/QFlx6ZPzJbbXOdTdAw0XKeqT8jwV7Vzxq0\n"
                             "TpfElR7U1TDgu88hVaYhp9ewAi9D3ufDtf0u3CizaNCsE51QJ3MU+LImQX8F5eM1\n"
                             "aBGz25QH4v6tnxBbllosYOiT4EPsk088VutunSJ8O/TG/1kXcEZlR+Uy7nzGpmWP\n"
                             "sgnMZy7/MGuT/0hHg5Nnz/3fngfoCdSzSCSR+C5TCuJzUWQPqFRG69ulAjvAIvE8\n"
                             "oMCjshwPAgMBAAECggEABpnAgeF+pO0nvKcEaUOxj5p5KBdVF8h5ko2PByOro00p\n"
                             "xoArcQ+g2Dmypb7p0sYfe2RINfFIe2ZQRYPut0AAPDU6UlKU96fe1aiYref+z2mq\n"
                             "9P0kb7S26rASTOoJTcZzyHYdeoUqBuWJyqhNKo7gnKPCgVj9bql0EW8qZ/BmcYxe\n"
                             "4wBiLciLxe/2gqyIU+i5M+VzHQJ9ZnBTIm/gnTc7jp5sYkRoQEX7r8A7OyAP4dQM\n"
                             "hbb4lSFGU6ycqa40t2rruLB5rOLRude9SDB4Yrq7PTBH4K7PuU6Zh7/WruR9l8eh\n"
                             "7c4EK4KxJKwNurWSo5omuQFzyL3m39UhOgl8aSijYQKBgQDOGeqQvZ1ivpZPLP7q\n"
                             "9vu5KcJnbE5UIA3d0Cnv/Z6oO7OwgJWP64pekGf1hHHe/cfjrSYrgtvbpBUgG7Tk\n"
                             "LU4bG4FgoS65ZhibmemQ2ReHRZoqM6Zasu2/MCeiSAW0FBnKf62Ljl8BJWwdOezo\n"
                             "nb9ZKRibECT/COnpE2HN8UW6CQKBgQC3DP2dF8JjPzWKgtPH4Wwqxt/c2xE/3UNF\n"
                             "wCWey/A46DYFQ3gZ36jLuSq/84bIxcCTO6BMcRZi2CDBKn0BeiAI5uqmhZzEMQpK\n"
                             "HJXlkllPPVIi02imK+awmpzO0we+YP//B3qQRp6G1KywhGYM/Rd3YbhSWygKns1+\n"
                             "JWeM5FWLVwKBgFdYCF563T5BwvWe/hGZxig8mFS4Q6HHS9kbJQq+EwT8+DPu6nNp\n"
                             "wOQ+krAsBw4XwySr9qct9/rnWMSYuVqSEK3QRE4tQN31dKxM1/04443CY4lLBk8d\n"
                             "0T/bKpDNsQ0WD7AP1/5ywbR8pYrlR491euhQUEs21lb28hqCyko62+/xAoGAR+wM\n"
                             "weqR8Bjn2pJoz8Jck7osP0S71FIFmqRSo8ARlOp4Pz0xNUlRsyoACAeRT9WTQsZM\n"
                             "x3wvhYrR49Pj5e6sI5NHY0JgRB3YoyH0K42DFcVMPm6+UXwyWfWF4yW7hyvpqbSw\n"
                             "jXuR0fxCFeEPj87pp3h3ybQTWYjnyMa9lvgoPGUCgYAqZzkwA9iwnj1ceJWG1wZp\n"
                             "0lio+esjXtu1PUGp8Q3IAFKevqyPLUcC/jGcwyVPd7r6MXM5g/NErZfnb/dPxbnD\n"
                             "S8yQvnORKWM2u6pVli6nONaIe3QrRcw5IDqrODSYojzSi3A07PR6V9TzqugQf6ju\n"
                             "paa8+nSGx1DeRxcp5HrirA==\n"
                             "-----END PRIVATE KEY-----\n";

EVP_PKEY *tbt_key_load(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    if (key == NULL) {
        fprintf(stderr, "tbt_key_load: a fixed test key does not load\n");
        abort();
    }
    return key;
}

void tbt_keyset_load(struct tbt_keyset *k)
{
    k->p256_a = tbt_key_load(TBT_PEM_P256_A);
    k->p256_b = tbt_key_load(TBT_PEM_P256_B);
    k->rsa_a = tbt_key_load(TBT_PEM_RSA_A);
    k->rsa_b = tbt_key_load(TBT_PEM_RSA_B);
}

void tbt_keyset_free(struct tbt_keyset *k)
{
    EVP_PKEY_free(k->p256_a);
    EVP_PKEY_free(k->p256_b);
    EVP_PKEY_free(k->rsa_a);
    EVP_PKEY_free(k->rsa_b);
    k->p256_a = k->p256_b = k->rsa_a = k->rsa_b = NULL;
}
