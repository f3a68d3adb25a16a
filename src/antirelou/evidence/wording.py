# ruff: noqa: E501  (document text and shell commands read better unwrapped)
"""The words of report.pdf and VERIFY.md, in French (default) and English."""

from __future__ import annotations

LANGS = ("fr", "en")

REPORT: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Dossier de preuves — messages reçus par un numéro antirelou",
        "subtitle": "Export : {selection}. Établi le {made} (UTC).",
        "summary": "Résumé",
        "period": "Période couverte",
        "lines": "Numéro(s) concerné(s)",
        "texts": "Messages reçus",
        "senders": "Numéros expéditeurs distincts",
        "flagged": "Messages signalés par les détecteurs (injure, copier-coller, rafale, bloc de numéros)",
        "replies": "Réponses automatiques envoyées",
        "calls": "Appels reçus",
        "incidents": "Incidents (raids) ouverts",
        "purged": "Enregistrements dont le contenu a été effacé (durée de conservation)",
        "unsigned": "Messages dont la signature du fournisseur n'a pas pu être vérifiée",
        "chain": "Chaîne de preuve",
        "chain_text": (
            "{records} enregistrements, du n° {first} au n° {last}, couverts par "
            "{checkpoints} point(s) de contrôle signé(s) ; dernier point : n° {cp_seq}, "
            "empreinte {cp_hash}, le {cp_at} UTC ; {stamped} horodaté(s) RFC 3161."
        ),
        "key": "Clé de signature de l'instance (Ed25519), empreinte : {fingerprint}",
        "timeline": "Chronologie",
        "timeline_caption": "Messages reçus par {bucket} ; en rouge, ceux signalés ; en gris, les incidents.",
        "minute": "minute",
        "10min": "tranche de 10 minutes",
        "hour": "heure",
        "day": "jour",
        "chart_all": "messages",
        "chart_flagged": "signalés",
        "ranked": "Expéditeurs classés par volume",
        "ranked_head": "Numéro|Messages|Signalés|Premier (heure locale)|Dernier (heure locale)",
        "repeated": "Textes les plus répétés",
        "repeated_head": "Texte|Envois|Expéditeurs",
        "excerpts": "Premiers messages reçus (extraits, tels que reçus)",
        "excerpts_head": "Heure locale|Expéditeur|Texte",
        "incident_list": "Incidents",
        "incident_row": "Incident n° {id} sur {line} : ouvert le {opened}, {closed} ; signaux : {signals}.",
        "still_open": "toujours ouvert",
        "closed_at": "clos le {closed}",
        "method": "Comment ces données ont été collectées",
        "method_text": (
            "Chaque message est reçu du fournisseur de téléphonie par un appel web (webhook) dont "
            "la signature est vérifiée, puis enregistré tel quel (texte, numéros, paramètres "
            "bruts du fournisseur, heure de réception) dans la base de données du service. Dans "
            "la même transaction, un enregistrement est ajouté à un journal chaîné : il contient "
            "l'empreinte SHA-256 du contenu (salée, pour qu'un numéro ne puisse pas être deviné) "
            "et l'empreinte de l'enregistrement précédent. Modifier, supprimer, déplacer ou "
            "insérer un enregistrement casse la chaîne. Toutes les quelques minutes, et à "
            "l'ouverture et à la clôture de chaque incident, la tête de la chaîne est signée "
            "avec la clé Ed25519 de l'instance, conservée hors de la base de données"
            "{tsa}. Les données personnelles sans lien avec un incident ni conservation pour "
            "plainte sont effacées après le délai de conservation ; leurs empreintes restent, "
            "ce qui préserve la preuve du reste."
        ),
        "tsa": ", et horodatée par une autorité d'horodatage RFC 3161",
        "verify": "Comment vérifier ce dossier",
        "verify_text": (
            "Le fichier VERIFY.md joint explique pas à pas la vérification avec des outils "
            "standard (sha256sum, openssl), sans logiciel antirelou : intégrité de chaque "
            "fichier (MANIFEST), signature du dossier et des points de contrôle, chaînage des "
            "enregistrements, correspondance entre chaque message et son empreinte, et "
            "horodatages. La commande « antirelou evidence verify dossier.zip » fait toutes ces "
            "vérifications. L'empreinte de la clé ci-dessus doit être comparée à celle publiée "
            "ou remise par les opérateurs du service."
        ),
        "law": "Note sur les infractions susceptibles d'être concernées",
        "law_text": (
            "À titre d'information et sans préjuger de la qualification des faits, qui relève "
            "de l'autorité judiciaire : des messages de ce type peuvent, selon leur contenu, "
            "leur nombre et leur date, relever notamment de l'article 222-16 du code pénal "
            "(appels téléphoniques malveillants réitérés et envois réitérés de messages "
            "malveillants émis par la voie des communications électroniques) et de l'article "
            "222-33-2-2 du même code (harcèlement moral, y compris lorsque les propos sont "
            "imposés à une même personne par plusieurs personnes, de manière concertée ou "
            "successivement — dit « harcèlement en meute », alinéas issus de la loi du "
            "3 août 2018). La version applicable est celle en vigueur à la date des faits. "
            "Ce rapport ne qualifie aucun fait et ne désigne aucune personne."
        ),
        "page": "Page {page}",
        "none": "aucun",
    },
    "en": {
        "title": "Evidence bundle — texts received by an antirelou number",
        "subtitle": "Export: {selection}. Made on {made} (UTC).",
        "summary": "Summary",
        "period": "Period covered",
        "lines": "Number(s) concerned",
        "texts": "Texts received",
        "senders": "Distinct sender numbers",
        "flagged": "Texts flagged by the detectors (insult, copy-paste, flood, number block)",
        "replies": "Automatic replies sent",
        "calls": "Calls received",
        "incidents": "Incidents (raids) opened",
        "purged": "Records whose content was erased (retention period)",
        "unsigned": "Texts whose provider signature could not be checked",
        "chain": "Chain of evidence",
        "chain_text": (
            "{records} records, #{first} to #{last}, covered by {checkpoints} signed "
            "checkpoint(s); last one: #{cp_seq}, hash {cp_hash}, on {cp_at} UTC; "
            "{stamped} with an RFC 3161 timestamp."
        ),
        "key": "The instance's signing key (Ed25519), fingerprint: {fingerprint}",
        "timeline": "Timeline",
        "timeline_caption": "Texts received per {bucket}; red: flagged; grey: incidents.",
        "minute": "minute",
        "10min": "10 minutes",
        "hour": "hour",
        "day": "day",
        "chart_all": "texts",
        "chart_flagged": "flagged",
        "ranked": "Senders ranked by volume",
        "ranked_head": "Number|Texts|Flagged|First (local time)|Last (local time)",
        "repeated": "Most repeated texts",
        "repeated_head": "Text|Times|Senders",
        "excerpts": "First texts received (excerpts, as received)",
        "excerpts_head": "Local time|Sender|Text",
        "incident_list": "Incidents",
        "incident_row": "Incident #{id} on {line}: opened {opened}, {closed}; signals: {signals}.",
        "still_open": "still open",
        "closed_at": "closed {closed}",
        "method": "How the data was collected",
        "method_text": (
            "Each text comes from the phone provider as a web call (webhook) whose signature is "
            "checked, and is stored as received (text, numbers, the provider's raw parameters, "
            "time of receipt) in the service's database. In the same transaction a record is "
            "appended to a hash-chained log: it holds the SHA-256 digest of the content (salted, "
            "so a phone number cannot be guessed from it) and the hash of the previous record. "
            "Changing, deleting, moving or inserting a record breaks the chain. Every few "
            "minutes, and when each incident opens and closes, the chain's head is signed with "
            "the instance's Ed25519 key, kept outside the database{tsa}. Personal data tied to "
            "no incident and no legal hold is erased when its retention period ends; the "
            "digests stay, so the proof of the rest holds."
        ),
        "tsa": ", and timestamped by an RFC 3161 time-stamping authority",
        "verify": "How to verify this bundle",
        "verify_text": (
            "The enclosed VERIFY.md explains, step by step, how to check it with standard tools "
            "(sha256sum, openssl) and no antirelou software: each file's integrity (MANIFEST), "
            "the signatures of the bundle and of the checkpoints, the chaining of the records, "
            "each text against its digest, and the timestamps. `antirelou evidence verify "
            "bundle.zip` runs every check. Compare the key fingerprint above with the one the "
            "service's operators published or handed over."
        ),
        "law": "Note on the offences these facts may relate to",
        "law_text": (
            "For information only, without prejudging how the facts are characterised, which is "
            "for the judicial authority: depending on their content, number and date, texts "
            "like these may relate in particular to article 222-16 of the French penal code "
            "(repeated malicious phone calls and repeated malicious electronic messages) and "
            "to article 222-33-2-2 of the same code (harassment, including when it is imposed "
            "on one person by several people, in concert or one after another — 'group "
            "harassment', paragraphs added by the law of 3 August 2018). The version that "
            "applies is the one in force when the facts took place. This report characterises "
            "no fact and names no one."
        ),
        "page": "Page {page}",
        "none": "none",
    },
}
