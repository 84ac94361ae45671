"""adstream's AWS CDK app: MSK, its network, security, IAM and the client services.

Imports nothing else of adstream: it is synthesized and deployed on its own.
"""

import os

# jsii prints a large banner on every start when Node is past end-of-life (Node 20 here);
# silence it before any submodule imports aws_cdk. An explicit setting still wins.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
