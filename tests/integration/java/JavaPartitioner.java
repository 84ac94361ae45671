// Prints the partition Java's default partitioner picks for each key (murmur2 of the key's
// UTF-8 bytes, as BuiltInPartitioner.partitionForKey does), one "key partition" per line.
// Used to prove that the Python producer places an adId where a Java producer would.
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class JavaPartitioner {
    public static void main(String[] args) {
        int partitions = Integer.parseInt(args[0]);
        for (int i = 1; i < args.length; i++) {
            byte[] key = args[i].getBytes(StandardCharsets.UTF_8);
            System.out.println(args[i] + " " + BuiltInPartitioner.partitionForKey(key, partitions));
        }
    }
}
