"""Pure text and number analysis for the raid detectors.

- ``abuse``: how abusive a text is (insults, threats, raid slang; French and English lexicons
  shipped in ``lexicons/``), robust to the usual disguises;
- ``fingerprint``: copy-paste cluster keys (exact + MinHash LSH bands) and a similarity score;
- ``numbers``: the shape of sender numbers (100-number block, VoIP/virtual, runs of consecutive
  numbers).

Nothing here touches the database, the clock or the network: the detectors in ``floods.py``
combine these signals and keep the state.
"""
