"""The AWS CDK app for the MSK deployment."""
