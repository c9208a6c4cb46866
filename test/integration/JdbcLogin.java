// Connector/J (MariaDB's, from Debian's libmariadb-java) logs in through the
// proxy and prints CURRENT_USER(), or the error's code:
//   java -cp mariadb-java-client.jar JdbcLogin.java PORT USER PASSWORD [CA_FILE]
// With CA_FILE the connection is TLS, the proxy's certificate checked.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Properties;

public class JdbcLogin {
  public static void main(String[] args) {
    Properties p = new Properties();
    p.setProperty("user", args[1]);
    p.setProperty("password", args[2]);
    if (args.length > 3) {
      p.setProperty("useSsl", "true");
      p.setProperty("serverSslCert", args[3]);
    }
    String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/test";
    try (Connection c = DriverManager.getConnection(url, p);
         ResultSet r = c.createStatement().executeQuery("SELECT CURRENT_USER()")) {
      r.next();
      System.out.println("user=" + r.getString(1));
    } catch (SQLException e) {
      System.out.println("error=" + e.getErrorCode());
    }
  }
}
