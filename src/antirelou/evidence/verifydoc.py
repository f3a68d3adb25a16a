# ruff: noqa: E501  (document text and shell commands read better unwrapped)
"""VERIFY.md: how anyone can check a bundle with standard tools (sha256sum, openssl)."""

from __future__ import annotations

_FR = """# Vérifier ce dossier

Ce dossier a été produit par le service antirelou. Chaque étape ci-dessous n'utilise que des
outils standard (GNU coreutils, OpenSSL 3) ; `antirelou evidence verify {name}` les fait toutes.

## 0. La clé
Comparez l'empreinte de la clé de l'instance, **{fingerprint}**, avec celle que les opérateurs
du service ont publiée ou remise (commande `antirelou evidence key`). Pour la recalculer :

    openssl pkey -pubin -in evidence/public_key.pem -outform DER | tail -c 32 | sha256sum

## 1. Aucun fichier n'a changé

    sha256sum -c MANIFEST
    openssl pkeyutl -verify -pubin -inkey evidence/public_key.pem -rawin -in MANIFEST -sigfile MANIFEST.sig

La première commande vérifie l'empreinte SHA-256 de chaque fichier, la seconde que MANIFEST
a été signé par la clé de l'instance (« Signature Verified Successfully »).

## 2. Les points de contrôle sont signés (et horodatés)
Chaque `evidence/checkpoints/<n>.txt` dit : « la chaîne comptait N enregistrements et sa
tête avait telle empreinte, à telle heure ». Pour chacun :

    openssl pkeyutl -verify -pubin -inkey evidence/keys/<clé>.pem -rawin -in evidence/checkpoints/<n>.txt -sigfile evidence/checkpoints/<n>.sig

S'il existe un `<n>.tsr` (horodatage RFC 3161) et le certificat de l'autorité :

    openssl ts -verify -data evidence/checkpoints/<n>.txt -in evidence/checkpoints/<n>.tsr -CAfile evidence/tsa-ca.pem

(Vérifiez aussi que ce certificat est bien celui publié par l'autorité d'horodatage.)

## 3. Les enregistrements sont chaînés
`evidence/chain.csv` : `seq,at,kind,ref,content_digest,prev_hash,record_hash`. Chaque
`record_hash` est le SHA-256 du texte `seq|kind|ref|at|content_digest|prev_hash`, et chaque
`prev_hash` est le `record_hash` de la ligne précédente :

    prev=""; tail -n +2 evidence/chain.csv | while IFS=, read -r seq at kind ref digest back hash; do
      got=$(printf '%s|%s|%s|%s|%s|%s' "$seq" "$kind" "$ref" "$at" "$digest" "$back" | sha256sum | cut -c1-64)
      [ "$got" = "$hash" ] || echo "enregistrement $seq : empreinte fausse"
      [ -z "$prev" ] || [ "$prev" = "$back" ] || echo "enregistrement $seq : chaînage rompu"
      prev=$hash
    done

La dernière ligne doit avoir le `seq` et le `record_hash` du dernier point de contrôle.

## 4. Chaque contenu correspond à son empreinte
`evidence/contents.tsv` : `seq`, `content_digest`, `salt`, puis le contenu en JSON canonique.
L'empreinte est le SHA-256 du sel suivi du JSON, et doit être celle de `chain.csv` :

    tab=$(printf '\\t'); while IFS="$tab" read -r seq digest salt json; do
      got=$(printf '%s%s' "$salt" "$json" | sha256sum | cut -c1-64)
      [ "$got" = "$digest" ] || echo "contenu $seq : modifié"
      grep -q "^$seq,.*,$digest,[0-9a-f]*,[0-9a-f]*$" evidence/chain.csv || echo "contenu $seq : absent de la chaîne"
    done < evidence/contents.tsv

## 5. Les messages
`messages.jsonl` contient, pour chaque message, exactement le contenu enregistré (plus `seq`
et l'heure locale) ; `messages.csv` la même chose pour un tableur (une cellule qui commence
par = + - ou @ y est précédée d'une apostrophe, pour qu'un tableur ne l'exécute pas).
`events.jsonl` contient les autres faits : réponses envoyées, appels, incidents, actions.
"""

_EN = """# Verifying this bundle

This bundle was made by the antirelou service. Each step below uses standard tools only
(GNU coreutils, OpenSSL 3); `antirelou evidence verify {name}` runs all of them.

## 0. The key
Compare the instance key's fingerprint, **{fingerprint}**, with the one the service's
operators published or handed over (`antirelou evidence key`). To recompute it:

    openssl pkey -pubin -in evidence/public_key.pem -outform DER | tail -c 32 | sha256sum

## 1. No file has changed

    sha256sum -c MANIFEST
    openssl pkeyutl -verify -pubin -inkey evidence/public_key.pem -rawin -in MANIFEST -sigfile MANIFEST.sig

The first checks every file's SHA-256, the second that MANIFEST was signed with the
instance's key ("Signature Verified Successfully").

## 2. The checkpoints are signed (and timestamped)
Each `evidence/checkpoints/<n>.txt` says "the chain had N records and its head had this hash,
at this time". For each one:

    openssl pkeyutl -verify -pubin -inkey evidence/keys/<key>.pem -rawin -in evidence/checkpoints/<n>.txt -sigfile evidence/checkpoints/<n>.sig

Where there is a `<n>.tsr` (RFC 3161 timestamp) and the authority's certificate:

    openssl ts -verify -data evidence/checkpoints/<n>.txt -in evidence/checkpoints/<n>.tsr -CAfile evidence/tsa-ca.pem

(Also check that this certificate is the one the time-stamping authority publishes.)

## 3. The records are chained
`evidence/chain.csv`: `seq,at,kind,ref,content_digest,prev_hash,record_hash`. Each
`record_hash` is the SHA-256 of the text `seq|kind|ref|at|content_digest|prev_hash`, and each
`prev_hash` is the previous line's `record_hash`:

    prev=""; tail -n +2 evidence/chain.csv | while IFS=, read -r seq at kind ref digest back hash; do
      got=$(printf '%s|%s|%s|%s|%s|%s' "$seq" "$kind" "$ref" "$at" "$digest" "$back" | sha256sum | cut -c1-64)
      [ "$got" = "$hash" ] || echo "record $seq: wrong hash"
      [ -z "$prev" ] || [ "$prev" = "$back" ] || echo "record $seq: chain broken"
      prev=$hash
    done

The last line must have the last checkpoint's `seq` and `record_hash`.

## 4. Each content matches its digest
`evidence/contents.tsv`: `seq`, `content_digest`, `salt`, then the content as canonical JSON.
The digest is the SHA-256 of the salt followed by the JSON, and must be the one in chain.csv:

    tab=$(printf '\\t'); while IFS="$tab" read -r seq digest salt json; do
      got=$(printf '%s%s' "$salt" "$json" | sha256sum | cut -c1-64)
      [ "$got" = "$digest" ] || echo "content $seq: changed"
      grep -q "^$seq,.*,$digest,[0-9a-f]*,[0-9a-f]*$" evidence/chain.csv || echo "content $seq: not in the chain"
    done < evidence/contents.tsv

## 5. The texts
`messages.jsonl` holds, for each text, exactly the recorded content (plus `seq` and the local
time); `messages.csv` the same for spreadsheets (a cell starting with = + - or @ is prefixed
with an apostrophe so that a spreadsheet does not run it). `events.jsonl` holds the other
facts: replies sent, calls, incidents, operator actions.
"""


def verify_md(lang: str, name: str, fingerprint: str) -> str:
    template = _FR if lang == "fr" else _EN
    return template.format(name=name, fingerprint=fingerprint)
